"""dns-01 (RFC 8555 §8.4): a TXT record at ``_acme-challenge.<name>`` holding
base64url(SHA-256(key authorization)). A wildcard's record is at its base name's
``_acme-challenge`` (RFC 8555 §8.4); CNAMEs are followed by the resolver."""

from __future__ import annotations

import hashlib

from acmegate.attestation.validation.problems import incorrect
from acmegate.attestation.validation.resolver import Lookups
from acmegate.common.ids import b64url


def expected_txt(key_authorization: str) -> str:
    """The TXT value that proves ``key_authorization`` (RFC 8555 §8.4)."""
    return b64url(hashlib.sha256(key_authorization.encode("ascii")).digest())


async def validate(lookups: Lookups, *, name: str, key_authorization: str) -> None:
    """Return if one TXT record at ``_acme-challenge.<name>`` is the expected value; else
    ``dns`` (NXDOMAIN, SERVFAIL, timeout) or ``incorrectResponse``."""
    record_name = f"_acme-challenge.{name}"
    records = await lookups.records(record_name, "TXT", missing_ok=False)
    expected = expected_txt(key_authorization)
    # A TXT record may be split into strings of 255 octets: they are joined (RFC 7208 §3.3).
    values = [b"".join(record.strings).decode("ascii", errors="replace") for record in records]
    if expected in values:
        return
    if not values:
        raise incorrect(f"no TXT record at {record_name}")
    shown = ", ".join(repr(v[:64]) for v in values[:3])
    raise incorrect(f"the TXT records at {record_name} are {shown}, not {expected!r}")
