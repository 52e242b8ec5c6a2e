"""Dotted version comparison and the device role conditions on the attestation."""

from __future__ import annotations

from typing import Any

import pytest

from acmegate.common.config.model import DeviceRoleConditions, DeviceRoleConfig
from acmegate.policy.conditions import compare_versions, device_role_mismatch, parse_version
from tests.unit.policy.builders import claims


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ("17.10", "17.9", 1),
        ("17.4", "17.4.0", 0),
        ("17", "17.0.0", 0),
        ("14.0", "14.0.1", -1),
        ("9.9.9", "10", -1),
        ("15.5 (24F74)", "15.5", 0),
        ("26.0", "18.7.1", 1),
    ],
)
def test_versions_compare_numerically_component_by_component(
    left: str, right: str, expected: int
) -> None:
    assert compare_versions(left, right) == expected
    assert compare_versions(right, left) == -expected


@pytest.mark.parametrize("text", ["", "beta", "v17", ".1"])
def test_a_version_that_does_not_start_with_a_number_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a dotted version"):
        parse_version(text)


def role(**conditions: object) -> DeviceRoleConfig:
    conditions.setdefault("attestation_provider", "apple")
    return DeviceRoleConfig(name="r", conditions=DeviceRoleConditions(**conditions))  # type: ignore[arg-type]


def test_a_device_meeting_every_condition_matches() -> None:
    device = claims(
        os_version="15.5",
        sip_enabled=True,
        secure_boot="Full Security",
        third_party_kexts_allowed=False,
    )
    full = role(
        min_os_version="15.0",
        sip_enabled=True,
        secure_boot=["full security"],  # Apple's spelling, compared without case
        third_party_kexts_allowed=False,
    )
    assert device_role_mismatch(full, device) is None


@pytest.mark.parametrize(
    ("conditions", "changes", "reason"),
    [
        ({"attestation_provider": "other"}, {}, "attested by 'apple', not 'other'"),
        ({"min_os_version": "18"}, {"os_version": "17.4.1"}, "OS version 17.4.1 is older than 18"),
        ({"min_os_version": "14"}, {"os_version": None}, "the attestation carries no OS version"),
        (
            {"min_os_version": "14"},
            {"os_version": "beta"},
            "OS version 'beta' is not a dotted version",
        ),
        ({"sip_enabled": True}, {"sip_enabled": False}, "SIP is disabled"),
        ({"sip_enabled": True}, {}, "the attestation reports no SIP status"),
        (
            {"secure_boot": ["Full Security"]},
            {"secure_boot": "Reduced Security"},
            "secure boot is 'Reduced Security'",
        ),
        (
            {"secure_boot": ["Full Security"]},
            {},
            "the attestation reports no secure boot status",
        ),
        (
            {"third_party_kexts_allowed": False},
            {"third_party_kexts_allowed": True},
            "third-party kernel extensions are allowed",
        ),
    ],
)
def test_each_unmet_device_role_condition_says_why(
    conditions: dict[str, Any], changes: dict[str, Any], reason: str
) -> None:
    assert (
        device_role_mismatch(role(**conditions), claims(**changes)) == f"device role 'r': {reason}"
    )


def test_an_order_without_attestation_matches_no_device_role() -> None:
    assert device_role_mismatch(role(), None) == (
        "device role 'r': the order carries no device attestation"
    )
