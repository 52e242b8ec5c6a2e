"""Certificate templates: parsed once at start, rendered into a :class:`CertificateSpec`.

The guide's "Creating a Certificate Template": a subject DN, SAN entries, validity, signature
algorithm and extended key usages, each value possibly holding ``${/path}`` variables
(:mod:`acmegate.policy.variables`).

The subject is an RFC 4514-like string parsed into RDNs *before* any substitution, so a CSR
value holding ``,`` or ``=`` stays inside its attribute and cannot add an RDN. RDNs are kept in
the order written (the signer encodes them in that order). An attribute or SAN entry that
renders empty is dropped, unless the template lists it in ``required``; then issuance fails
with a detail naming the variable that had no value.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

from acmegate.common.config.model import CertificateTemplateConfig, Config, seconds
from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.common.messages import CertificateSpec, NameAttribute, SanEntry, SanType
from acmegate.policy.variables import (
    Expression,
    RenderContext,
    Segment,
    Variable,
    VariableError,
    parse_text,
    parse_variable,
)

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

EKU_OIDS: dict[str, str] = {
    "server_auth": "1.3.6.1.5.5.7.3.1",
    "client_auth": "1.3.6.1.5.5.7.3.2",
    "code_signing": "1.3.6.1.5.5.7.3.3",
    "email_protection": "1.3.6.1.5.5.7.3.4",
    "time_stamping": "1.3.6.1.5.5.7.3.8",
    "ocsp_signing": "1.3.6.1.5.5.7.3.9",
}

_DOTTED_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
_HEX = frozenset("0123456789abcdefABCDEF")

# SanTemplate field → (SanEntry type, the name used in `required` and messages).
_SAN_FIELDS: tuple[tuple[str, SanType], ...] = (
    ("dns", "dns"),
    ("rfc822", "rfc822"),
    ("uri", "uri"),
    ("ip", "ip"),
    ("other_name", "upn"),
    ("permanent_identifier", "permanent_identifier"),
)
_SAN_LABELS: dict[SanType, str] = {
    "dns": "dNSName",
    "rfc822": "rfc822Name",
    "uri": "URI",
    "ip": "iPAddress",
    "upn": "UPN otherName",
    "permanent_identifier": "PermanentIdentifier",
}


class TemplateError(Exception):
    """A template is invalid; each of ``problems`` names its key (``$.certificate_templates…``)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def attribute_oid(name: str) -> str | None:
    """The dotted OID of a subject attribute type (short name, ``OID.x.y`` or dotted)."""
    text = name.strip()
    if text[:4].lower() == "oid.":
        text = text[4:]
    if _DOTTED_OID.match(text):
        return text
    return ATTRIBUTE_OIDS.get(text.lower())


def eku_oid(name: str) -> str | None:
    """The OID of an extended key usage name or dotted OID."""
    if _DOTTED_OID.match(name):
        return name
    return EKU_OIDS.get(name)


# --- subject DN parsing ------------------------------------------------------------------------

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
            problem = _subject_value_problem(oid, literal)
            if problem:
                raise VariableError(f"{name} {problem}")
        attributes.append(SubjectAttribute(name, oid, value))
    return attributes


def _subject_value_problem(oid: str, value: str) -> str | None:
    if oid == _COUNTRY and (len(value) != 2 or not value.isascii() or not value.isalpha()):
        return f"must be a two-letter country code, not {value!r}"
    limit = _MAX_LENGTH.get(oid)
    if limit is not None and len(value) > limit:
        return f"is longer than {limit} characters (RFC 5280 Appendix A)"
    return None


def _san_value_problem(kind: SanType, value: str) -> str | None:
    if kind in ("dns", "rfc822", "uri") and not value.isascii():
        return "holds non-ASCII characters (IA5String)"
    if kind == "dns" and (any(c.isspace() for c in value) or len(value) > 253):
        return "is not a DNS name"
    if kind == "rfc822" and "@" not in value:
        return "is not an email address"
    if kind == "uri" and ":" not in value:
        return "is not an absolute URI"
    if kind == "ip":
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return "is not an IP address"
    return None


# --- compiled templates -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SanTemplateEntry:
    """One SAN entry of a parsed template."""

    type: SanType
    field: str  # the SanTemplate field, e.g. "other_name"
    key: str  # e.g. "san.other_name[0]", for messages
    value: Expression
    required: bool = False


@dataclass(frozen=True)
class CompiledTemplate:
    """A template parsed once; :meth:`render` is the per-message work."""

    name: str
    subject: tuple[SubjectAttribute, ...]
    sans: tuple[SanTemplateEntry, ...]
    validity_seconds: int
    signature_hash: Literal["sha256", "sha384", "sha512"]
    key_usage: tuple[str, ...]
    extended_key_usage: tuple[str, ...]

    def render(self, *, ca: str, context: RenderContext) -> CertificateSpec:
        """The certificate spec for one order; raises :class:`AcmeError` if a required
        entry renders empty (badCSR when the CSR lacks it) or a value is unusable."""
        subject: list[NameAttribute] = []
        for attribute in self.subject:
            value = attribute.value.first(context)
            if not value:
                if attribute.required:
                    raise self._missing(attribute.value, context, f"subject {attribute.name}")
                continue
            problem = _subject_value_problem(attribute.oid, value)
            if problem:
                raise AcmeError(
                    ErrorKind.BAD_CSR,
                    f"template {self.name!r} renders a subject {attribute.name} that {problem}",
                )
            subject.append(NameAttribute(attribute.oid, value))
        sans: list[SanEntry] = []
        seen: set[tuple[str, str]] = set()
        for entry in self.sans:
            values = entry.value.values(context)
            if not values and entry.required:
                raise self._missing(entry.value, context, entry.key)
            for value in values:
                problem = _san_value_problem(entry.type, value)
                if problem:
                    raise AcmeError(
                        ErrorKind.BAD_CSR,
                        f"template {self.name!r} renders a {_SAN_LABELS[entry.type]} "
                        f"{value!r} that {problem}",
                    )
                if (entry.type, value) not in seen:
                    seen.add((entry.type, value))
                    sans.append(SanEntry(entry.type, value))
        return CertificateSpec(
            ca=ca,
            template=self.name,
            public_key=context.csr.public_key,
            subject=subject,
            sans=sans,
            validity_seconds=self.validity_seconds,
            signature_hash=self.signature_hash,
            key_usage=list(self.key_usage),
            extended_key_usage=list(self.extended_key_usage),
        )

    def _missing(self, value: Expression, context: RenderContext, what: str) -> AcmeError:
        variable = value.missing(context)
        if variable is None:  # a literal never renders empty; kept for completeness
            return AcmeError(ErrorKind.BAD_CSR, f"template {self.name!r} renders {what} empty")
        # A value the CSR lacks is the client's to fix (RFC 8555 §7.4 badCSR); one the
        # attestation or the signal source lacks is not, so it is refused as unauthorized.
        kind = ErrorKind.BAD_CSR if variable.from_csr else ErrorKind.UNAUTHORIZED
        return AcmeError(
            kind,
            f"template {self.name!r} needs ${{{variable.path}}} but {variable.absence(context)}",
        )


_REQUIRED_HELP = (
    "use subject, subject.<attribute>, san, san.dns, san.rfc822, san.uri, san.ip, "
    "san.other_name or san.permanent_identifier"
)


def compile_template(
    template: CertificateTemplateConfig,
    *,
    where: str,
    source_attributes: Collection[str] | None = None,
) -> CompiledTemplate:
    """Parse ``template`` (at config key ``where``); :class:`TemplateError` lists every problem."""
    problems: list[str] = []
    subject: list[SubjectAttribute] = []
    try:
        subject = parse_subject(template.subject, source_attributes)
    except VariableError as exc:
        problems.append(f"{where}.subject: {exc}")

    sans: list[SanTemplateEntry] = []
    for field, kind in _SAN_FIELDS:
        for index, text in enumerate(getattr(template.san, field)):
            key = f"san.{field}[{index}]"
            try:
                value = parse_text(text, source_attributes)
            except VariableError as exc:
                problems.append(f"{where}.{key}: {exc}")
                continue
            literal = value.literal
            problem = "is empty" if literal == "" else None
            if literal:
                problem = _san_value_problem(kind, literal)
            if problem:
                problems.append(f"{where}.{key}: {_SAN_LABELS[kind]} {literal!r} {problem}")
                continue
            sans.append(SanTemplateEntry(kind, field, key, value))

    required_subject: set[str] = set()
    required_san: set[str] = set()
    for index, name in enumerate(template.required):
        key = f"{where}.required[{index}]"
        if name == "subject":
            required_subject.update(attribute.oid for attribute in subject)
        elif name.startswith("subject."):
            oid = attribute_oid(name[len("subject.") :])
            if oid is None or all(attribute.oid != oid for attribute in subject):
                problems.append(f"{key}: the subject has no attribute {name[8:]!r}")
            else:
                required_subject.add(oid)
        elif name == "san":
            required_san.update(field for field, _ in _SAN_FIELDS)
        elif name.startswith("san.") and name[4:] in {field for field, _ in _SAN_FIELDS}:
            field = name[4:]
            if not getattr(template.san, field):
                problems.append(f"{key}: the template has no san.{field} entry")
            required_san.add(field)
        else:
            problems.append(f"{key}: unknown entry {name!r}: {_REQUIRED_HELP}")

    ekus: list[str] = []
    for index, name in enumerate(template.extended_key_usage):
        oid = eku_oid(name)
        if oid is None:
            problems.append(
                f"{where}.extended_key_usage[{index}]: unknown extended key usage {name!r} "
                f"(use {', '.join(EKU_OIDS)} or a dotted OID)"
            )
        elif oid not in ekus:
            ekus.append(oid)

    if problems:
        raise TemplateError(problems)
    return CompiledTemplate(
        name=template.name,
        subject=tuple(
            SubjectAttribute(a.name, a.oid, a.value, a.oid in required_subject) for a in subject
        ),
        sans=tuple(
            SanTemplateEntry(
                entry.type, entry.field, entry.key, entry.value, entry.field in required_san
            )
            for entry in sans
        ),
        validity_seconds=seconds(template.validity),
        signature_hash=template.signature_algorithm,
        key_usage=tuple(dict.fromkeys(template.key_usage)),
        extended_key_usage=tuple(ekus),
    )


def compile_templates(
    config: Config, source_attributes: Collection[str] | None = None
) -> Mapping[str, CompiledTemplate]:
    """Every configured template by name; :class:`TemplateError` lists every problem."""
    compiled: dict[str, CompiledTemplate] = {}
    problems: list[str] = []
    for index, template in enumerate(config.certificate_templates):
        try:
            compiled[template.name] = compile_template(
                template,
                where=f"$.certificate_templates[{index}]",
                source_attributes=source_attributes,
            )
        except TemplateError as exc:
            problems.extend(exc.problems)
    if problems:
        raise TemplateError(problems)
    return compiled
