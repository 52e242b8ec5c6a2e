"""CAA decisions on a relevant record set (RFC 8659 §4)."""

from __future__ import annotations

import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest

from acmegate.attestation.validation.caa import decide

US = ["ca.example.net"]


def caa(text: str) -> object:
    return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.CAA, text)


@pytest.mark.parametrize(
    ("records", "wildcard", "permitted"),
    [
        (['0 issue "ca.example.net"'], False, True),
        (['0 issue "CA.Example.Net; account=1"'], False, True),
        (['0 issue "other.example"'], False, False),
        (['0 issue ";"'], False, False),
        (['0 iodef "mailto:x@example.org"'], False, True),  # no issue-type record
        (['0 issue "other.example"', '0 issuewild "ca.example.net"'], True, True),
        (['0 issue "ca.example.net"', '0 issuewild ";"'], True, False),
        (['0 issue "ca.example.net"'], True, True),  # no issuewild: issue decides
        (['128 tbs "x"', '0 issue "ca.example.net"'], False, False),  # critical unknown tag
        (['0 tbs "x"', '0 issue "ca.example.net"'], False, True),
    ],
)
def test_relevant_records_decide(records: list[str], wildcard: bool, permitted: bool) -> None:
    verdict = decide([caa(r) for r in records], wildcard=wildcard, identities=US)
    assert (verdict is None) is permitted, verdict
