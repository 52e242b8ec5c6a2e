"""Server identifiers (``dns``, RFC 8555 §9.7.7; ``ip``, RFC 8738) and the name policy.

One place decides whether a name is well-formed and which enrollment policy admits it: the
frontend asks at newOrder (so a refused name never gets an authorization) and the policy
service asks again at finalize (so the certificate follows the configuration it is issued
under, not the one the order was created under).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from acmegate.common.config.model import EnrollmentPolicyConfig, ServerNamesConfig
from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.common.messages import Identifier, Subproblem
from acmegate.common.vocabulary import IdentifierType

# RFC 1035 §2.3.1 preferred name syntax (LDH labels), as RFC 5280 §4.2.1.6 requires of a
# dNSName; underscores are refused (CA/B Forum BR §7.1.4.2 agrees).
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
MAX_NAME_LENGTH = 253


@dataclass(frozen=True, slots=True)
class ServerName:
    """One checked server identifier: ``value`` without a wildcard's ``*.``."""

    identifier: Identifier
    value: str
    wildcard: bool = False

    @property
    def is_ip(self) -> bool:
        return self.identifier.type == IdentifierType.IP


def _rejected(identifier: Identifier, why: str) -> AcmeError:
    return AcmeError(ErrorKind.REJECTED_IDENTIFIER, why, identifier=identifier)


def check_identifier(identifier: Identifier) -> ServerName:
    """The checked form of a ``dns`` or ``ip`` identifier, or ``rejectedIdentifier``."""
    value = identifier.value
    if identifier.type == IdentifierType.IP:
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise _rejected(identifier, f"{value!r} is not an IP address") from None
        # RFC 8738 §3: the textual form of RFC 1123 §2.1 / RFC 5952 §4, which is what
        # ipaddress prints; anything else (leading zeros, upper case) is not that form.
        if str(address) != value:
            raise _rejected(identifier, f"write the address as {str(address)!r} (RFC 8738 §3)")
        return ServerName(identifier, value)
    wildcard = value.startswith("*.")
    name = value[2:] if wildcard else value
    if name != name.lower():
        raise _rejected(identifier, f"{value!r}: write names in lower case")
    if len(name) > MAX_NAME_LENGTH or not all(_LABEL.match(label) for label in name.split(".")):
        raise _rejected(identifier, f"{value!r} is not a valid DNS name")
    if "." not in name:
        raise _rejected(identifier, f"{value!r}: a single-label name cannot be certified")
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        raise _rejected(identifier, f"{value!r} is an IP address: use an 'ip' identifier")
    return ServerName(identifier, name, wildcard)


def _domain_admits(pattern: str, name: str) -> bool:
    if pattern.startswith("*."):
        return name.endswith(pattern[1:])
    return name == pattern


def _admits_account(names: ServerNamesConfig, account_id: str, eab_key_id: str | None) -> bool:
    """``accounts`` and ``eab_keys`` together: no list admits anyone; otherwise the account
    must be named, or be bound to a named EAB key (RFC 8555 §7.3.4)."""
    if not names.accounts and not names.eab_keys:
        return True
    return account_id in names.accounts or (eab_key_id is not None and eab_key_id in names.eab_keys)


def refusal(
    names: ServerNamesConfig, name: ServerName, account_id: str, eab_key_id: str | None = None
) -> str | None:
    """Why ``names`` does not admit ``name`` for ``account_id`` (bound to the EAB key
    ``eab_key_id``, if any); None if it does."""
    if not _admits_account(names, account_id, eab_key_id):
        return "this account is not allowed server certificates"
    if name.is_ip:
        address = ipaddress.ip_address(name.value)
        if any(address in ipaddress.ip_network(n, strict=False) for n in names.ip_networks):
            return None
        return f"{name.value} is in no allowed network"
    if name.wildcard and not names.wildcards:
        return "wildcards are not allowed"
    if any(_domain_admits(pattern, name.value) for pattern in names.domains):
        return None
    return f"{name.identifier.value} is not an allowed name"


def parse_server_identifiers(identifiers: Sequence[Identifier]) -> list[ServerName]:
    """Every identifier checked; one ``rejectedIdentifier`` with a subproblem per bad one."""
    checked: list[ServerName] = []
    problems: list[Subproblem] = []
    for identifier in identifiers:
        try:
            checked.append(check_identifier(identifier))
        except AcmeError as exc:
            problems.append(Subproblem(exc.kind, exc.detail, identifier))
    if problems:
        raise _compound(problems)
    return checked


def _compound(problems: list[Subproblem]) -> AcmeError:
    if len(problems) == 1:
        only = problems[0]
        return AcmeError(only.kind, only.detail, identifier=only.identifier)
    # RFC 8555 §6.7.1: one problem per identifier; all are rejectedIdentifier here.
    detail = "; ".join(p.detail for p in problems)
    return AcmeError(ErrorKind.REJECTED_IDENTIFIER, detail, subproblems=tuple(problems))


def choose_policy(
    policies: Sequence[EnrollmentPolicyConfig],
    names: Sequence[ServerName],
    account_id: str,
    eab_key_id: str | None = None,
) -> EnrollmentPolicyConfig:
    """The first server policy that admits every name for ``account_id`` (bound to
    ``eab_key_id``, if any; one certificate comes from one policy), or ``rejectedIdentifier``
    naming each refused identifier."""
    server = [p for p in policies if p.server_names is not None]
    if not server:
        raise AcmeError(
            ErrorKind.UNSUPPORTED_IDENTIFIER,
            "this gateway issues no server certificates (no enrollment policy has server_names)",
            identifier=names[0].identifier if names else None,
        )
    for policy in server:
        assert policy.server_names is not None
        if all(refusal(policy.server_names, n, account_id, eab_key_id) is None for n in names):
            return policy
    problems = []
    for name in names:
        reasons = [
            refusal(p.server_names, name, account_id, eab_key_id) for p in server if p.server_names
        ]
        if all(reason is not None for reason in reasons):
            why = "; ".join(sorted({r for r in reasons if r}))
            problems.append(Subproblem(ErrorKind.REJECTED_IDENTIFIER, why, name.identifier))
    if not problems:
        # Each name is admitted by some policy, but no single policy admits them all.
        return_detail = "no single enrollment policy admits all of these names; order them apart"
        raise AcmeError(ErrorKind.REJECTED_IDENTIFIER, return_detail)
    raise _compound(problems)
