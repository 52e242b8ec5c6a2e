"""Certificate templates: parsed once at start, rendered into a :class:`CertificateSpec`.

The guide's "Creating a Certificate Template": a subject DN, SAN entries, validity, signature
algorithm and extended key usages, each value possibly holding ``${/path}`` variables
(:mod:`acmegate.policy.variables`).

The subject is parsed into RDNs before any substitution (:mod:`acmegate.policy.subject_dn`).
An attribute or SAN entry that renders empty is dropped, unless the template lists it in
``required``; then issuance fails with a detail naming the variable that had no value.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

from acmegate.common.config.model import CertificateTemplateConfig, Config, seconds
from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.common.messages import CertificateSpec, NameAttribute, SanEntry, SanType
from acmegate.policy.csr_rules import CsrCheck, compile_rules
from acmegate.policy.subject_dn import (
    DOTTED_OID,
    SubjectAttribute,
    attribute_oid,
    parse_subject,
    subject_value_problem,
)
from acmegate.policy.variables import Expression, RenderContext, VariableError, parse_text

EKU_OIDS: dict[str, str] = {
    "server_auth": "1.3.6.1.5.5.7.3.1",
    "client_auth": "1.3.6.1.5.5.7.3.2",
    "code_signing": "1.3.6.1.5.5.7.3.3",
    "email_protection": "1.3.6.1.5.5.7.3.4",
    "time_stamping": "1.3.6.1.5.5.7.3.8",
    "ocsp_signing": "1.3.6.1.5.5.7.3.9",
}

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


def eku_oid(name: str) -> str | None:
    """The OID of an extended key usage name or dotted OID."""
    if DOTTED_OID.match(name):
        return name
    return EKU_OIDS.get(name)


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
    # One per CSR variable the template uses: its values must pass their rule (csr_rules.py).
    csr_checks: tuple[CsrCheck, ...] = ()

    def render(self, *, ca: str, context: RenderContext) -> CertificateSpec:
        """The certificate spec for one order; raises :class:`AcmeError` if a CSR value is
        not admitted by its rule or a required entry renders empty (badCSR), or a value is
        unusable."""
        for check in self.csr_checks:
            refusal = check.refusal(self.name, context)
            if refusal is not None:
                raise AcmeError(ErrorKind.BAD_CSR, refusal)
        subject: list[NameAttribute] = []
        for attribute in self.subject:
            value = attribute.value.first(context)
            if not value:
                if attribute.required:
                    raise self._missing(attribute.value, context, f"subject {attribute.name}")
                continue
            problem = subject_value_problem(attribute.oid, value)
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

    csr_checks, rule_problems = _csr_checks(template, subject, sans, where, source_attributes)
    problems.extend(rule_problems)

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
        csr_checks=csr_checks,
    )


def _csr_checks(
    template: CertificateTemplateConfig,
    subject: list[SubjectAttribute],
    sans: list[SanTemplateEntry],
    where: str,
    source_attributes: Collection[str] | None,
) -> tuple[tuple[CsrCheck, ...], list[str]]:
    """The rule of every CSR variable the subject and SANs use; a variable without one is a
    problem at the first entry that uses it."""
    rules, problems = compile_rules(
        template.csr_rules, where=where, source_attributes=source_attributes
    )
    # The subject uses each variable's first value; a SAN entry that is one variable alone
    # yields all of them (variables.py).
    uses = [(f"{where}.subject", attribute.value, False) for attribute in subject]
    uses += [
        (f"{where}.{entry.key}", entry.value, len(entry.value.segments) == 1) for entry in sans
    ]
    checks: dict[str, CsrCheck] = {}
    unruled: set[str] = set()
    for key, expression, every_value in uses:
        for variable in expression.variables:
            if not variable.from_csr:
                continue
            rule = rules.get(variable.path)
            if rule is None:
                # Reported once, at the first entry using it (an invalid rule is reported
                # where it is written).
                if variable.path not in template.csr_rules and variable.path not in unruled:
                    unruled.add(variable.path)
                    problems.append(
                        f"{key}: ${{{variable.path}}} comes from the CSR and has no rule: add "
                        f"csr_rules.{variable.path} with equals or matches"
                    )
                continue
            previous = checks.get(variable.path)
            every = every_value or (previous is not None and previous.every_value)
            checks[variable.path] = CsrCheck(variable, rule, every)
    return tuple(checks.values()), problems


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
