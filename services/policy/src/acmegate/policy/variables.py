"""Template variables ``${/path}``: the catalogue, parsing, and rendering of values.

The names follow the product guide ("Creating a Certificate Template": ``${/csr/subject/
commonname}``, ``${/csr/san/othername}``, ``${/csr/san/rfc822name}``, ``${/csr/san/dnsname}``)
and extend it to the attestation (``/device/...``), the order and the signal source record
(``/source/<attribute>``). Every variable is resolved to a function once, when the template is
parsed at start, so rendering a message is a few attribute reads.

A value is a sequence of literal text and variables (an :class:`Expression`). A variable may
have several values (a CSR with three dNSNames): an expression that is exactly one variable
yields them all; any other expression uses the first value of each variable, and renders
empty as soon as one of its variables has no value (``${/device/serialnumber}.example.com``
must not become ``.example.com``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from acmegate.common.messages import CsrInfo, DeviceClaims, Identifier
from acmegate.policy.sources.base import DeviceRecord


class VariableError(ValueError):
    """An unknown variable or a malformed ``${``; the message says which."""


@dataclass(frozen=True, slots=True)
class RenderContext:
    """What one FinalizeOrder offers to its template."""

    csr: CsrInfo
    device: DeviceClaims | None
    identifiers: Sequence[Identifier]
    record: DeviceRecord | None = None
    signal_source: str | None = None


Resolver = Callable[[RenderContext], Sequence[str | None]]


@dataclass(frozen=True, slots=True)
class Variable:
    """One ``${/path}``: how to find its values, and how to say that it has none."""

    path: str
    resolve: Resolver
    # Completes "template X needs ${path} but …" when the variable has no value.
    absent: str
    # True when the value comes from the CSR: the client could fix it (badCSR).
    from_csr: bool = False

    def values(self, context: RenderContext) -> list[str]:
        """The non-empty values of this variable for ``context``."""
        return [value for value in self.resolve(context) if value]

    def absence(self, context: RenderContext) -> str:
        """Why the variable has no value here, for an error detail."""
        if self.path.startswith("/source/") and context.record is None:
            return "no signal source was consulted for this device"
        if self.path.startswith("/source/"):
            return f"signal source {context.signal_source!r} has no {self.absent} for this device"
        return self.absent


def _one(value: str | None) -> Sequence[str | None]:
    return (value,)


def _device(field: str) -> Resolver:
    def resolve(context: RenderContext) -> Sequence[str | None]:
        device = context.device
        return (getattr(device, field),) if device is not None else ()

    return resolve


def _source(attribute: str) -> Resolver:
    def resolve(context: RenderContext) -> Sequence[str | None]:
        record = context.record
        return (record.attributes.get(attribute),) if record is not None else ()

    return resolve


_CATALOGUE: dict[str, Variable] = {
    variable.path: variable
    for variable in (
        Variable(
            "/csr/subject/commonname",
            lambda c: _one(c.csr.common_name),
            "the CSR has no subject commonName",
            from_csr=True,
        ),
        Variable(
            "/csr/san/dnsname", lambda c: c.csr.dns_names, "the CSR has no dNSName", from_csr=True
        ),
        Variable(
            "/csr/san/rfc822name",
            lambda c: c.csr.emails,
            "the CSR has no rfc822Name",
            from_csr=True,
        ),
        # The guide's "Other Name": a Microsoft UPN otherName (1.3.6.1.4.1.311.20.2.3).
        Variable(
            "/csr/san/othername",
            lambda c: c.csr.upns,
            "the CSR has no UPN otherName",
            from_csr=True,
        ),
        Variable("/csr/san/uri", lambda c: c.csr.uris, "the CSR has no URI", from_csr=True),
        Variable(
            "/csr/san/ipaddress",
            lambda c: c.csr.ip_addresses,
            "the CSR has no iPAddress",
            from_csr=True,
        ),
        Variable(
            "/csr/san/permanentidentifier",
            lambda c: [name.value for name in c.csr.permanent_identifiers],
            "the CSR has no PermanentIdentifier",
            from_csr=True,
        ),
        # docs/apple-attestation.md §6: what the attestation certifies about the device.
        Variable(
            "/device/serialnumber",
            _device("serial_number"),
            "the attestation carries no serial number",
        ),
        Variable("/device/udid", _device("udid"), "the attestation carries no UDID"),
        Variable(
            "/device/osversion", _device("os_version"), "the attestation carries no OS version"
        ),
        Variable(
            "/device/seposversion",
            _device("sepos_version"),
            "the attestation carries no sepOS version",
        ),
        Variable(
            "/device/model",
            _device("software_update_device_id"),
            "the attestation carries no software update device ID",
        ),
        Variable(
            "/order/identifier",
            lambda c: [identifier.value for identifier in c.identifiers],
            "the order has no identifier",
        ),
    )
}

SOURCE_PREFIX = "/source/"
_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


def known_paths() -> list[str]:
    """Every fixed variable path (``/source/<attribute>`` aside), for messages and docs."""
    return sorted(_CATALOGUE)


def parse_variable(path: str, source_attributes: Collection[str] | None = None) -> Variable:
    """The :class:`Variable` for ``path`` (the text between ``${`` and ``}``).

    ``source_attributes``: the attribute names the configured signal sources offer; ``None``
    accepts any well-formed ``/source/<attribute>``.
    """
    fixed = _CATALOGUE.get(path)
    if fixed is not None:
        return fixed
    if path.startswith(SOURCE_PREFIX):
        attribute = path[len(SOURCE_PREFIX) :]
        if not _ATTRIBUTE_NAME.match(attribute):
            raise VariableError(f"malformed signal source attribute in ${{{path}}}")
        if source_attributes is not None and attribute not in source_attributes:
            offered = ", ".join(sorted(source_attributes)) or "none"
            raise VariableError(
                f"unknown variable ${{{path}}}: no signal source offers the attribute "
                f"{attribute!r} (offered: {offered})"
            )
        return Variable(path, _source(attribute), f"attribute {attribute!r}")
    raise VariableError(
        f"unknown variable ${{{path}}} (known: {', '.join(known_paths())}, /source/<attribute>)"
    )


Segment = str | Variable


@dataclass(frozen=True, slots=True)
class Expression:
    """Literal text and variables, parsed once; rendered per message."""

    segments: tuple[Segment, ...]

    @property
    def variables(self) -> list[Variable]:
        return [segment for segment in self.segments if isinstance(segment, Variable)]

    @property
    def literal(self) -> str | None:
        """The text of an expression without variables, else ``None``."""
        if self.variables:
            return None
        return "".join(segment for segment in self.segments if isinstance(segment, str))

    def first(self, context: RenderContext) -> str | None:
        """The value using each variable's first value; ``None`` if one has no value."""
        parts: list[str] = []
        for segment in self.segments:
            if isinstance(segment, str):
                parts.append(segment)
                continue
            values = segment.values(context)
            if not values:
                return None
            parts.append(values[0])
        return "".join(parts) or None

    def values(self, context: RenderContext) -> list[str]:
        """Every value: one per value of a lone variable, else at most :meth:`first`."""
        if len(self.segments) == 1 and isinstance(self.segments[0], Variable):
            return self.segments[0].values(context)
        value = self.first(context)
        return [value] if value else []

    def missing(self, context: RenderContext) -> Variable | None:
        """The first variable without a value (what an error about an empty value names)."""
        for variable in self.variables:
            if not variable.values(context):
                return variable
        return None


def parse_text(text: str, source_attributes: Collection[str] | None = None) -> Expression:
    """Parse a plain value (a SAN entry): ``${/path}`` are variables, the rest is literal.

    A ``$`` not followed by ``{`` is literal. Raises :class:`VariableError`.
    """
    segments: list[Segment] = []
    position = 0
    while True:
        start = text.find("${", position)
        if start < 0:
            break
        end = text.find("}", start + 2)
        if end < 0:
            raise VariableError(f"unterminated '${{' at offset {start}")
        if start > position:
            segments.append(text[position:start])
        segments.append(parse_variable(text[start + 2 : end], source_attributes))
        position = end + 1
    if position < len(text):
        segments.append(text[position:])
    return Expression(tuple(segments))
