"""The conditions an enrollment policy checks, each answering "why not" or ``None``.

- platform: the device management platform the order came through (enrollment token);
- device role (the guide's "Device Role Policy"): conditions on the verified attestation
  (docs/apple-attestation.md §6: OS version, SIP, secure boot, third-party kexts);
- policy workflow (the guide's "Policy Workflow"): conditions on the signal source's record.

Reasons are short, as they are joined into the detail the device's ACME client receives when no
policy matches.
"""

from __future__ import annotations

import re

from acmegate.common.config.model import DeviceRoleConfig, EnrollmentPolicyConfig
from acmegate.common.config.model import PolicyWorkflowConfig as Workflow
from acmegate.common.messages import DeviceClaims
from acmegate.policy.sources.base import DeviceRecord

# The values Apple reports for secure boot (docs/apple-attestation.md §6, OID
# 1.2.840.113635.100.8.13.2).
SECURE_BOOT_LEVELS = ("Full Security", "Reduced Security", "Permissive Security")

_VERSION = re.compile(r"^\s*(\d+(?:\.\d+)*)")


def parse_version(text: str) -> tuple[int, ...]:
    """The numeric components of a dotted version (``"17.4.1"`` → ``(17, 4, 1)``).

    Trailing text such as a build (``"15.5 (24F74)"``) is ignored; a version that does not
    start with a number raises ``ValueError``.
    """
    match = _VERSION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a dotted version")
    return tuple(int(part) for part in match.group(1).split("."))


def compare_versions(left: str, right: str) -> int:
    """-1, 0 or 1 as ``left`` is older than, equal to or newer than ``right``.

    Components compare numerically and missing ones count as 0 (``"17"`` == ``"17.0.0"``,
    ``"17.10"`` > ``"17.9"``).
    """
    a, b = parse_version(left), parse_version(right)
    width = max(len(a), len(b))
    a += (0,) * (width - len(a))
    b += (0,) * (width - len(b))
    return (a > b) - (a < b)


def platform_mismatch(policy: EnrollmentPolicyConfig, platform: str | None) -> str | None:
    """Why the order's platform does not satisfy ``policy.platforms`` (empty: any platform)."""
    if not policy.platforms or platform in policy.platforms:
        return None
    if platform is None:
        return f"only for orders through platform(s) {', '.join(policy.platforms)}"
    return f"platform {platform!r} is not one of {', '.join(policy.platforms)}"


def _same_boot_level(value: str, accepted: list[str]) -> bool:
    folded = value.strip().casefold()
    return any(folded == level.strip().casefold() for level in accepted)


def device_role_mismatch(role: DeviceRoleConfig, device: DeviceClaims | None) -> str | None:
    """Why the attestation does not satisfy ``role``'s conditions; ``None`` if it does.

    A condition whose claim is missing from the attestation fails: an iPhone reports no SIP
    status, so a role that requires SIP does not match it.
    """
    conditions = role.conditions
    name = f"device role {role.name!r}"
    if device is None:
        return f"{name}: the order carries no device attestation"
    if device.provider != conditions.attestation_provider:
        return f"{name}: attested by {device.provider!r}, not {conditions.attestation_provider!r}"
    if conditions.min_os_version is not None:
        if not device.os_version:
            return f"{name}: the attestation carries no OS version"
        try:
            older = compare_versions(device.os_version, conditions.min_os_version) < 0
        except ValueError:
            return f"{name}: OS version {device.os_version!r} is not a dotted version"
        if older:
            return (
                f"{name}: OS version {device.os_version} is older than {conditions.min_os_version}"
            )
    if conditions.sip_enabled is not None and device.sip_enabled != conditions.sip_enabled:
        if device.sip_enabled is None:
            return f"{name}: the attestation reports no SIP status"
        return f"{name}: SIP is {'enabled' if device.sip_enabled else 'disabled'}"
    if conditions.secure_boot:
        if device.secure_boot is None:
            return f"{name}: the attestation reports no secure boot status"
        if not _same_boot_level(device.secure_boot, conditions.secure_boot):
            return f"{name}: secure boot is {device.secure_boot!r}"
    allowed = conditions.third_party_kexts_allowed
    if allowed is not None and device.third_party_kexts_allowed != allowed:
        if device.third_party_kexts_allowed is None:
            return f"{name}: the attestation does not say whether third-party kexts are allowed"
        state = "allowed" if device.third_party_kexts_allowed else "not allowed"
        return f"{name}: third-party kernel extensions are {state}"
    return None


def workflow_mismatch(
    workflow: Workflow, record: DeviceRecord | None, *, identity: str, source: str
) -> str | None:
    """Why the signal source's answer does not satisfy ``workflow``; ``None`` if it does.

    The device must be known, managed (an MDM keeps records of devices it released:
    docs/jamf.md §8.5), in one of the groups (if any), and carry every listed attribute with
    an accepted value.
    """
    if record is None:
        return f"device {identity} is not known to signal source {source!r}"
    if record.problem is not None:
        return (
            f"device {identity} cannot be vouched for: {record.problem} (signal source {source!r})"
        )
    if not record.managed:
        return f"device {identity} is not managed (signal source {source!r})"
    wanted = workflow.conditions.groups
    if wanted and not any(group in wanted for group in record.groups):
        return (
            f"device {identity} is in none of the groups {', '.join(map(repr, wanted))} "
            f"(signal source {source!r})"
        )
    for attribute, accepted in workflow.conditions.attributes.items():
        value = record.attributes.get(attribute)
        if value is None:
            return f"device {identity} has no attribute {attribute!r} (signal source {source!r})"
        if value not in accepted:
            # The value itself stays out: the detail reaches the device, the inventory is ours.
            return (
                f"device {identity} has attribute {attribute!r} with a value not in "
                f"{', '.join(map(repr, accepted))} (signal source {source!r})"
            )
    return None
