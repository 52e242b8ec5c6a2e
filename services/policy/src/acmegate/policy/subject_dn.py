"""Subject DN templates: an RFC 4514-like string parsed into RDNs *before* any substitution.

So a CSR value holding ``,`` or ``=`` stays inside its attribute and cannot add an RDN. RDNs
are kept in the order written (the signer encodes them in that order); escapes follow
RFC 4514 §2.4 (``\\,`` or ``\\2C`` for a literal comma, consecutive ``\\XX`` forming one
UTF-8 sequence), and values are checked against RFC 5280 Appendix A's upper bounds.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from acmegate.policy.variables import Expression, Segment, Variable, VariableError, parse_variable

# Short names of RFC 4514 §3 plus the ones certificate subjects commonly carry.
ATTRIBUTE_OIDS: dict[str, str] = {
    "cn": "2.5.4.3",
    "serialnumber": "2.5.4.5",
    "c": "2.5.4.6",
    "l": "2.5.4.7",
    "st": "2.5.4.8",
    "street": "2.5.4.9",
    "o": "2.5.4.10",
    "ou": "2.5.4.11",
    "dc": "0.9.2342.19200300.100.1.25",
    "uid": "0.9.2342.19200300.100.1.1",
    "e": "1.2.840.113549.1.9.1",
    "emailaddress": "1.2.840.113549.1.9.1",
}

# RFC 5280 Appendix A upper bounds, checked so the signer never gets a value it must refuse.
_MAX_LENGTH: dict[str, int] = {
    "2.5.4.3": 64,
    "2.5.4.5": 64,
    "2.5.4.6": 2,
    "2.5.4.7": 128,
    "2.5.4.8": 128,
    "2.5.4.10": 64,
    "2.5.4.11": 64,
    "1.2.840.113549.1.9.1": 255,
}
_COUNTRY = "2.5.4.6"

DOTTED_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
_HEX = frozenset("0123456789abcdefABCDEF")


def attribute_oid(name: str) -> str | None:
    """The dotted OID of a subject attribute type (short name, ``OID.x.y`` or dotted)."""
    text = name.strip()
    if text[:4].lower() == "oid.":
        text = text[4:]
    if DOTTED_OID.match(text):
        return text
    return ATTRIBUTE_OIDS.get(text.lower())


# A token of a DN: a character (and whether it was escaped) or a variable.
_Char = tuple[str, bool]
_Token = _Char | Variable


def _tokenize_dn(text: str, source_attributes: Collection[str] | None) -> list[_Token]:
    """Characters with their escape status, and variables; RFC 4514 §2.4 escapes resolved."""
    tokens: list[_Token] = []
    pending = bytearray()  # consecutive \XX escapes form one UTF-8 sequence

    def flush() -> None:
        if pending:
            try:
                decoded = pending.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise VariableError("hex escapes are not valid UTF-8") from exc
            tokens.extend((char, True) for char in decoded)
            pending.clear()

    position = 0
    while position < len(text):
        char = text[position]
        if char == "\\":
            pair = text[position + 1 : position + 3]
            if len(pair) == 2 and all(c in _HEX for c in pair):
                pending.append(int(pair, 16))
                position += 3
                continue
            flush()
            if position + 1 >= len(text):
                raise VariableError("dangling '\\' at the end")
            tokens.append((text[position + 1], True))
            position += 2
            continue
        flush()
        if text.startswith("${", position):
            end = text.find("}", position + 2)
            if end < 0:
                raise VariableError(f"unterminated '${{' at offset {position}")
            tokens.append(parse_variable(text[position + 2 : end], source_attributes))
            position = end + 1
            continue
        tokens.append((char, False))
        position += 1
    flush()
    return tokens


def _is(token: _Token, char: str) -> bool:
    return isinstance(token, tuple) and token == (char, False)


def _strip(tokens: list[_Token]) -> list[_Token]:
    """Drop unescaped spaces at both ends (RFC 4514 wants them escaped to be kept)."""
    start, end = 0, len(tokens)
    while start < end and _is(tokens[start], " "):
        start += 1
    while end > start and _is(tokens[end - 1], " "):
        end -= 1
    return tokens[start:end]


def _expression(tokens: list[_Token]) -> Expression:
    segments: list[Segment] = []
    text: list[str] = []
    for token in tokens:
        if isinstance(token, tuple):
            text.append(token[0])
            continue
        if text:
            segments.append("".join(text))
            text = []
        segments.append(token)
    if text:
        segments.append("".join(text))
    return Expression(tuple(segments))


@dataclass(frozen=True, slots=True)
class SubjectAttribute:
    """One RDN of a parsed subject template."""

    name: str  # as written, e.g. "CN"
    oid: str
    value: Expression
    required: bool = False


def parse_subject(
    text: str, source_attributes: Collection[str] | None = None
) -> list[SubjectAttribute]:
    """Parse a subject DN template into RDNs in the order written.

    ``,`` separates RDNs; ``\\,`` (or ``\\2C``) is a literal comma. Multi-valued RDNs (``+``)
    are refused: the certificate spec carries one attribute per RDN. Raises
    :class:`~acmegate.policy.variables.VariableError` with what is wrong.
    """
    tokens = _tokenize_dn(text, source_attributes)
    if not _strip(tokens):
        return []
    rdns: list[list[_Token]] = [[]]
    for token in tokens:
        if _is(token, ","):
            rdns.append([])
        else:
            rdns[-1].append(token)
    attributes: list[SubjectAttribute] = []
    for number, rdn in enumerate(rdns, start=1):
        rdn = _strip(rdn)
        if not rdn:
            raise VariableError(f"RDN {number} is empty (a stray ',' ?)")
        equals = next((i for i, token in enumerate(rdn) if _is(token, "=")), None)
        if equals is None:
            raise VariableError(f"RDN {number} has no '=': write TYPE=value")
        kind = _strip(rdn[:equals])
        if not kind or not all(isinstance(t, tuple) and not t[1] for t in kind):
            raise VariableError(f"RDN {number} has no plain attribute type before '='")
        name = "".join(t[0] for t in kind if isinstance(t, tuple))
        oid = attribute_oid(name)
        if oid is None:
            raise VariableError(
                f"unknown attribute type {name!r} (use CN, O, OU, C, L, ST, STREET, DC, UID, "
                "E, serialNumber or a dotted OID)"
            )
        value_tokens = _strip(rdn[equals + 1 :])
        if any(_is(token, "+") for token in value_tokens):
            raise VariableError(
                f"{name}: multi-valued RDNs are not supported; write '\\+' for a literal plus"
            )
        value = _expression(value_tokens)
        literal = value.literal
        if literal == "":
            raise VariableError(f"{name} has an empty value")
        if literal is not None:
            problem = subject_value_problem(oid, literal)
            if problem:
                raise VariableError(f"{name} {problem}")
        attributes.append(SubjectAttribute(name, oid, value))
    return attributes


def subject_value_problem(oid: str, value: str) -> str | None:
    """Why ``value`` cannot be the value of attribute ``oid`` (RFC 5280 bounds), or None."""
    if oid == _COUNTRY and (len(value) != 2 or not value.isascii() or not value.isalpha()):
        return f"must be a two-letter country code, not {value!r}"
    limit = _MAX_LENGTH.get(oid)
    if limit is not None and len(value) > limit:
        return f"is longer than {limit} characters (RFC 5280 Appendix A)"
    return None
