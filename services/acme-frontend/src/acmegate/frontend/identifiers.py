"""newOrder identifiers (draft-ietf-acme-device-attest §3, RFC 8555 §7.4).

``permanent-identifier`` values follow the draft's ABNF::

    permanent-identifier-value = device-identifier-value ["/" assigner-value]
    device-identifier-value    = 1*(%x00-2E / %x30-FF)        ; anything but "/"
    assigner-value             = first-and-second-components *("." component)
    first-and-second-components = (("0" / "1") "." (*1(%x31-33) %x30-39)) / ("2" "." component)
    component                  = "0" / (%x31-39 *%x30-39)

A non-conforming value is ``malformed`` (the draft's MUST). ``dns`` and ``ip`` identifiers
(RFC 8555 §9.7.7, RFC 8738) are for server certificates and are checked by
:mod:`acmegate.common.server_names`; an order holds either one device or server names, never
both (a device's attestation proves nothing about a name). Other types get
``unsupportedIdentifier``.
"""

from __future__ import annotations

import re
from typing import Any

from acmegate.common.errors import AcmeError, ErrorKind, malformed
from acmegate.common.messages import Identifier
from acmegate.common.vocabulary import IdentifierType

PERMANENT_IDENTIFIER = IdentifierType.PERMANENT_IDENTIFIER
SERVER_TYPES = (IdentifierType.DNS, IdentifierType.IP)
MAX_VALUE_LENGTH = 255
# Let's Encrypt's limit of names per certificate; more only makes one order fail slowly.
MAX_SERVER_IDENTIFIERS = 100

_COMPONENT = r"(?:0|[1-9][0-9]*)"
_ASSIGNER = re.compile(rf"^(?:(?:[01]\.(?:[1-3]?[0-9]))|(?:2\.{_COMPONENT}))(?:\.{_COMPONENT})*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def parse_identifiers(raw: Any) -> list[Identifier]:
    """The identifiers of a newOrder payload: exactly one device, or server names."""
    if not isinstance(raw, list) or not raw:
        raise malformed("newOrder needs a non-empty 'identifiers' array")
    identifiers = [_parse_one(item) for item in raw]
    server = [i for i in identifiers if i.type in SERVER_TYPES]
    if server and len(server) != len(identifiers):
        raise AcmeError(
            ErrorKind.REJECTED_IDENTIFIER,
            "an order names one device (permanent-identifier) or server names (dns, ip), "
            "never both",
        )
    if server:
        # Duplicates name the same thing once (one authorization each).
        unique = list(dict.fromkeys(server))
        if len(unique) > MAX_SERVER_IDENTIFIERS:
            raise AcmeError(
                ErrorKind.REJECTED_IDENTIFIER,
                f"an order names at most {MAX_SERVER_IDENTIFIERS} identifiers",
            )
        return unique
    if len(identifiers) != 1:
        # A device certificate names one device; Apple clients send exactly one identifier
        # (docs/apple-attestation.md §2), and one authorization per order keeps the state machine
        # atomic.
        raise malformed("an order names exactly one device identifier")
    return identifiers


def _parse_one(item: Any) -> Identifier:
    if not isinstance(item, dict) or not isinstance(item.get("type"), str):
        raise malformed("each identifier is an object with a 'type' and a 'value'")
    kind, value = item["type"], item.get("value")
    if not isinstance(value, str):
        raise malformed("identifier 'value' must be a string")
    identifier = Identifier(kind, value)
    if kind in SERVER_TYPES:
        return identifier
    if kind != PERMANENT_IDENTIFIER:
        raise AcmeError(
            ErrorKind.UNSUPPORTED_IDENTIFIER,
            f"identifier type {kind!r} is not supported; use {PERMANENT_IDENTIFIER!r}, "
            "'dns' or 'ip'",
            identifier=identifier,
        )
    check_permanent_identifier(value)
    return identifier


def check_permanent_identifier(value: str) -> None:
    device, slash, assigner = value.partition("/")
    if not device:
        raise malformed("permanent-identifier value must not be empty")
    if slash and not _ASSIGNER.match(assigner):
        raise malformed(
            f"permanent-identifier value {value!r}: after '/' must come an assigner OID"
        )
    if len(value) > MAX_VALUE_LENGTH:
        raise AcmeError(
            ErrorKind.REJECTED_IDENTIFIER,
            f"permanent-identifier values are limited to {MAX_VALUE_LENGTH} characters",
            identifier=Identifier(PERMANENT_IDENTIFIER, value[:MAX_VALUE_LENGTH]),
        )
    if _CONTROL.search(value):
        raise AcmeError(
            ErrorKind.REJECTED_IDENTIFIER,
            "permanent-identifier value contains control characters",
            identifier=Identifier(PERMANENT_IDENTIFIER, value),
        )
