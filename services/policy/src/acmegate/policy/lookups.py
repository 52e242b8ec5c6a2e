"""Running a lookup policy (the guide's "Security Signal Source") for one order.

A lookup policy says which signal source to ask and which identity to ask about: the
attested serial number or UDID (docs/apple-attestation.md §6), or the CSR's SAN dNSName. A
:class:`LookupSession` lives for one FinalizeOrder: it asks each source at most once per
identity (two policies sharing a workflow look up once) and keeps what happened for the
audit table ``policy.lookups``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from acmegate.common.config.model import LookupPolicyConfig
from acmegate.common.messages import DeviceClaims, FinalizeOrder
from acmegate.policy.sources.base import (
    DeviceKind,
    DeviceRecord,
    IdentityKind,
    SignalSource,
    SourceUnavailable,
)

# Which source key each lookup identity is looked up by. A PermanentIdentifier holds a serial
# number or a UDID (docs/apple-attestation.md §2), so it is tried as both.
IDENTITY_KINDS: dict[str, tuple[IdentityKind, ...]] = {
    "attested_serial": ("serial_number",),
    "attested_udid": ("udid",),
    "csr_san_dns": ("dns_name",),
    "certificate_san_dns": ("dns_name",),
    "certificate_permanent_identifier": ("serial_number", "udid"),
    # Apple profiles write CN=$SERIALNUMBER (or $UDID): tried as both, like the above.
    "certificate_common_name": ("serial_number", "udid"),
}

# The identities an enrollment (a FinalizeOrder) can supply; the others come with RADIUS.
ENROLLMENT_IDENTITIES = frozenset({"attested_serial", "attested_udid", "csr_san_dns"})


def likely_kind(device: DeviceClaims | None) -> DeviceKind | None:
    """Which Jamf inventory most likely holds the attested device.

    Apple includes SIP, secure boot and kernel-extension OIDs only in macOS attestations
    (docs/apple-attestation.md §6), so any of them marks a Mac; their absence, another Apple device.
    """
    if device is None:
        return None
    if (
        device.sip_enabled is not None
        or device.secure_boot is not None
        or device.third_party_kexts_allowed is not None
    ):
        return "computer"
    return "mobile_device"


@dataclass(frozen=True, slots=True)
class OrderIdentity:
    """What to look up for an order, or why there is nothing to look up."""

    kind: IdentityKind
    value: str | None
    missing: str | None = None


def order_identity(policy: LookupPolicyConfig, order: FinalizeOrder) -> OrderIdentity:
    """The identity ``policy`` looks up for ``order``.

    The attested identities come from the first attestation of the order (the device the CSR
    key was bound to by the attestation stage); the CSR's first SAN dNSName otherwise.
    """
    device = order.claims[0] if order.claims else None
    if policy.identity == "attested_serial":
        serial = device.serial_number if device else None
        return OrderIdentity("serial_number", serial, None if serial else "no attested serial")
    if policy.identity == "attested_udid":
        udid = device.udid if device else None
        return OrderIdentity("udid", udid, None if udid else "no attested UDID")
    if policy.identity == "csr_san_dns":
        names = order.csr.dns_names if order.csr else []
        if names:
            return OrderIdentity("dns_name", names[0])
        return OrderIdentity("dns_name", None, "the CSR has no dNSName to look up")
    return OrderIdentity(
        "serial_number", None, f"lookup identity {policy.identity} is for RADIUS, not enrollment"
    )


def binding_mismatch(
    identity: OrderIdentity, record: DeviceRecord | None, device: DeviceClaims | None, source: str
) -> str | None:
    """Why the record found for ``identity`` is not the attested device's; ``None`` if it is.

    A record found by the attested serial or UDID is the device's by construction; one found
    by a name the CSR chose (``csr_san_dns``) may be any device's. Only Apple's attestation
    says which device holds the key, so the record must carry the attested serial number or
    UDID, or the device would be issued a certificate, and the template another device's
    ``${/source/...}`` values, on a name it merely wrote.
    """
    if record is None:
        return None
    if device is not None and record.identifies(device.serial_number, device.udid):
        return None
    attested = "no serial number or UDID"
    if device is not None and (device.serial_number or device.udid):
        attested = (
            f"serial {device.serial_number}" if device.serial_number else f"UDID {device.udid}"
        )
    what = f"the CSR's dNSName {identity.value}" if identity.kind == "dns_name" else identity.value
    return (
        f"{what} names a device of signal source {source!r} that is not the attested device "
        f"({attested})"
    )


Outcome = Literal["found", "unknown", "unavailable"]


@dataclass(frozen=True, slots=True)
class LookupEvent:
    """One question put to a signal source, as the audit records it."""

    lookup_policy: str
    source: str
    kind: IdentityKind
    identity: str
    outcome: Outcome
    managed: bool | None = None
    detail: str | None = None


@dataclass
class LookupSession:
    """The lookups of one order: asked once each, all remembered."""

    events: list[LookupEvent] = field(default_factory=list)
    _answers: dict[tuple[str, str, str], DeviceRecord | None] = field(default_factory=dict)

    async def lookup(
        self,
        policy: LookupPolicyConfig,
        source: SignalSource,
        kind: IdentityKind,
        identity: str,
        *,
        fresh: bool = False,
        likely: DeviceKind | None = None,
    ) -> DeviceRecord | None:
        """``source``'s record of ``identity``; raises :class:`SourceUnavailable`.

        ``fresh`` asks the source again even if this session (or the source's cache) has an
        answer, and that answer replaces the session's.
        """
        key = (source.name, kind, identity)
        if key in self._answers and not fresh:
            return self._answers[key]
        try:
            record = await source.lookup(identity, kind, fresh=fresh, likely=likely)
        except SourceUnavailable as exc:
            self.events.append(
                LookupEvent(
                    policy.name, source.name, kind, identity, "unavailable", None, exc.reason
                )
            )
            raise
        self._answers[key] = record
        self.events.append(
            LookupEvent(
                policy.name,
                source.name,
                kind,
                identity,
                "found" if record is not None else "unknown",
                record.managed if record is not None else None,
            )
        )
        return record
