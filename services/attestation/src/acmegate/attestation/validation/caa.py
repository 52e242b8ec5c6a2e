"""CAA (RFC 8659): may this CA issue for a name?

- The relevant record set (§3) is found by climbing the tree: the CAA records of the name,
  else of its parent, and so on up to (not including) the root; the first non-empty set
  decides. CNAMEs are followed by the resolver (§3).
- For a wildcard, ``issuewild`` records decide when there are any, else ``issue`` (§4.3).
- With no issue-type property in the set, anyone may issue (§4.2). Otherwise a record must
  name one of this CA's identities (``validation.caa.identities``); ``;`` alone names no one.
  Parameters after the domain are not interpreted (none are standard for issue; accounturi
  and validationmethods of RFC 8657 are not supported, so such a record still permits).
- A record with the critical flag and a tag this CA does not know forbids issuance (§4.1).
- A lookup that fails (SERVFAIL, timeout) forbids issuance (§3: the CA MUST NOT issue),
  reported as ``dns``; NXDOMAIN just climbs.
IP identifiers have no CAA (RFC 8738 does not define it) and are not checked, nor are names
under ``localhost`` (RFC 6761 §6.3: no DNS server holds records for them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from acmegate.attestation.validation.problems import caa as caa_problem
from acmegate.attestation.validation.resolver import Lookups, is_localhost

_KNOWN_TAGS = frozenset({"issue", "issuewild", "iodef"})
_CRITICAL = 0x80


def _issuer(value: bytes) -> str:
    """The issuer domain of an issue/issuewild value ("" for ";" alone)."""
    text = value.decode("ascii", errors="replace")
    return text.split(";", 1)[0].strip().lower().rstrip(".")


def decide(records: Sequence[Any], *, wildcard: bool, identities: Sequence[str]) -> str | None:
    """Why ``records`` (a relevant set) forbid issuance; None when they permit it."""
    tags = [(r.flags, r.tag.decode("ascii", errors="replace").lower(), r.value) for r in records]
    for flags, tag, _ in tags:
        if flags & _CRITICAL and tag not in _KNOWN_TAGS:
            return f"a critical CAA record with unknown tag {tag!r} forbids issuance"
    relevant = [value for _, tag, value in tags if tag == "issuewild"] if wildcard else []
    if not relevant:
        relevant = [value for _, tag, value in tags if tag == "issue"]
    if not relevant:
        return None
    ours = {identity.lower().rstrip(".") for identity in identities}
    named = [_issuer(value) for value in relevant]
    if any(issuer in ours for issuer in named if issuer):
        return None
    shown = ", ".join(sorted({n or ";" for n in named}))
    kind = "issuewild" if wildcard and any(t == "issuewild" for _, t, _ in tags) else "issue"
    return f"CAA {kind} records name {shown}, not this CA ({', '.join(sorted(ours))})"


async def check(lookups: Lookups, *, name: str, wildcard: bool, identities: Sequence[str]) -> None:
    """Raise ``caa`` if the relevant CAA records of ``name`` forbid this CA to issue."""
    if is_localhost(name):
        return
    labels = name.rstrip(".").split(".")
    for start in range(len(labels)):
        domain = ".".join(labels[start:])
        records = await lookups.records(domain, "CAA", missing_ok=True)
        if records:
            why = decide(records, wildcard=wildcard, identities=identities)
            if why is not None:
                raise caa_problem(f"{why} (at {domain})")
            return
