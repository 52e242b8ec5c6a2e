"""Rules a value from the CSR must pass before a template copies it into a certificate.

The device writes its CSR as it likes: a Secure Enclave key proves where the key lives, not who
chose the names beside it. A template that copies ``${/csr/san/othername}`` into a certificate
would certify ``administrator@corp.example`` as the device's UPN for anyone who asks, and a
RADIUS or NPS server mapping UPNs to accounts would believe it. So every ``${/csr/...}``
variable a template uses has a rule (``csr_rules`` of the template): the value must equal a
value the gateway trusts (the attestation, the order, the signal source) or fully match a
pattern the administrator wrote, in which those trusted values are expanded regex-escaped.
A template whose CSR variable has no rule does not load.

Two variables have a default rule, because the attestation stage already binds them to the
device and Apple's ACME profiles fill them with its identity: the subject commonName and the
PermanentIdentifier must be the attested serial number or UDID (``CN=$SERIALNUMBER``; the
ClientIdentifier, draft-ietf-acme-device-attest §1.1). A rule in ``csr_rules`` replaces it.

Rules are parsed once at start; patterns without variables are compiled then too. A pattern
with variables is compiled per order with the device's values (``re`` caches recent ones).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from acmegate.common.config.model import CsrValueRule
from acmegate.policy.variables import (
    Expression,
    RenderContext,
    Variable,
    VariableError,
    parse_text,
)

CSR_PREFIX = "/csr/"

# What the CSR variables are called in messages.
CSR_LABELS: dict[str, str] = {
    "/csr/subject/commonname": "subject commonName",
    "/csr/san/dnsname": "dNSName",
    "/csr/san/rfc822name": "rfc822Name",
    "/csr/san/othername": "UPN otherName",
    "/csr/san/uri": "URI",
    "/csr/san/ipaddress": "iPAddress",
    "/csr/san/permanentidentifier": "PermanentIdentifier",
}

_ATTESTED_IDENTITY = CsrValueRule(equals=["${/device/serialnumber}", "${/device/udid}"])
DEFAULT_RULES: dict[str, CsrValueRule] = {
    "/csr/subject/commonname": _ATTESTED_IDENTITY,
    "/csr/san/permanentidentifier": _ATTESTED_IDENTITY,
}

# DNS names compare without regard to case (RFC 4343 §3); every other value exactly.
_IGNORE_CASE = frozenset({"/csr/san/dnsname"})
# What stands in for a variable when a pattern's syntax is checked at start.
_PLACEHOLDER = re.escape("x")


@dataclass(frozen=True, slots=True)
class _Pattern:
    text: str  # as written, for messages
    expression: Expression
    flags: int
    compiled: re.Pattern[str] | None  # the pattern itself when it has no variables

    def admits(self, value: str, context: RenderContext) -> bool:
        if self.compiled is not None:
            return self.compiled.fullmatch(value) is not None
        parts: list[str] = []
        for segment in self.expression.segments:
            if isinstance(segment, str):
                parts.append(segment)
                continue
            values = segment.values(context)
            if not values:
                return False  # a value the pattern is built from is missing: fail closed
            parts.append(re.escape(values[0]))
        return re.compile("".join(parts), self.flags).fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """One variable's rule, parsed; :meth:`admits` is the per-value check."""

    path: str
    name: str  # how messages name it: "csr_rules./csr/san/dnsname" or the default rule
    equals: tuple[tuple[str, Expression], ...]
    matches: tuple[_Pattern, ...]
    ignore_case: bool

    def admits(self, value: str, context: RenderContext) -> bool:
        """Whether ``value`` equals an admitted value or fully matches a pattern."""
        wanted = value.casefold() if self.ignore_case else value
        for _, expression in self.equals:
            for allowed in expression.values(context):
                if (allowed.casefold() if self.ignore_case else allowed) == wanted:
                    return True
        return any(pattern.admits(value, context) for pattern in self.matches)

    def describe(self) -> str:
        """The rule as the administrator wrote it (values stay out: they may be private)."""
        parts = [f"equals {text}" for text, _ in self.equals]
        parts += [f"matches {pattern.text!r}" for pattern in self.matches]
        return " or ".join(parts)


def _no_csr_variables(expression: Expression) -> str | None:
    for variable in expression.variables:
        if variable.from_csr:
            return (
                f"${{{variable.path}}} comes from the CSR itself; a rule compares with values "
                "of the attestation, the order or the signal source"
            )
    return None


def _trusted_value(
    text: str, where: str, source_attributes: Collection[str] | None, problems: list[str]
) -> Expression | None:
    """``text`` parsed, if it is a non-empty value without CSR variables; else a problem."""
    try:
        expression = parse_text(text, source_attributes)
    except VariableError as exc:
        problems.append(f"{where}: {exc}")
        return None
    problem = _no_csr_variables(expression) or ("is empty" if not text else None)
    if problem:
        problems.append(f"{where}: {problem}")
        return None
    return expression


def compile_rule(
    path: str,
    rule: CsrValueRule,
    *,
    key: str,
    name: str,
    source_attributes: Collection[str] | None = None,
) -> tuple[CompiledRule | None, list[str]]:
    """Parse ``rule`` for variable ``path`` (at config ``key``): the rule, or its problems."""
    problems: list[str] = []
    if path not in CSR_LABELS:
        known = ", ".join(sorted(CSR_LABELS))
        hint = " (write the path without ${ })" if path.startswith("${") else ""
        return None, [f"{key}: not a CSR variable{hint}; one of {known}"]
    flags = re.IGNORECASE if path in _IGNORE_CASE else 0
    equals: list[tuple[str, Expression]] = []
    for index, text in enumerate(rule.equals_list):
        expression = _trusted_value(text, f"{key}.equals[{index}]", source_attributes, problems)
        if expression is not None:
            equals.append((text, expression))
    patterns: list[_Pattern] = []
    for index, text in enumerate(rule.matches_list):
        where = f"{key}.matches[{index}]"
        expression = _trusted_value(text, where, source_attributes, problems)
        if expression is None:
            continue
        trial = "".join(
            segment if isinstance(segment, str) else _PLACEHOLDER for segment in expression.segments
        )
        try:
            compiled = re.compile(trial, flags)
        except re.error as exc:
            problems.append(f"{where}: not a valid regular expression: {exc}")
            continue
        patterns.append(
            _Pattern(text, expression, flags, None if expression.variables else compiled)
        )
    if not rule.equals_list and not rule.matches_list:
        problems.append(f"{key}: a rule needs equals or matches (or both)")
    if problems:
        return None, problems
    return CompiledRule(path, name, tuple(equals), tuple(patterns), path in _IGNORE_CASE), []


def compile_rules(
    rules: Mapping[str, CsrValueRule],
    *,
    where: str,
    source_attributes: Collection[str] | None = None,
) -> tuple[dict[str, CompiledRule], list[str]]:
    """A template's ``csr_rules`` over the defaults: each variable's rule, and the problems."""
    compiled: dict[str, CompiledRule] = {}
    problems: list[str] = []
    for path, rule in DEFAULT_RULES.items():
        if path not in rules:
            default, _ = compile_rule(
                path, rule, key=f"{where}.csr_rules.{path}", name=f"the default rule of ${{{path}}}"
            )
            assert default is not None  # the defaults are valid by construction
            compiled[path] = default
    for path, rule in rules.items():
        key = f"{where}.csr_rules.{path}"
        parsed, found = compile_rule(
            path, rule, key=key, name=f"csr_rules.{path}", source_attributes=source_attributes
        )
        problems.extend(found)
        if parsed is not None:
            compiled[path] = parsed
    return compiled, problems


@dataclass(frozen=True, slots=True)
class CsrCheck:
    """A CSR variable a template uses, the rule its values pass, and which values land."""

    variable: Variable
    rule: CompiledRule
    # True when an entry is the variable alone (every value lands); else only the first does.
    every_value: bool

    def refusal(self, template: str, context: RenderContext) -> str | None:
        """Why a value of the variable may not be issued; ``None`` when all pass."""
        values = self.variable.values(context)
        for value in values if self.every_value else values[:1]:
            if not self.rule.admits(value, context):
                return (
                    f"template {template!r}: the CSR's {CSR_LABELS[self.variable.path]} "
                    f"{value!r} is not admitted by {self.rule.name} ({self.rule.describe()})"
                )
        return None
