"""Operator checks: the policy configuration at start and the guide's "Validate Configuration"."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from acmegate.common.config import load_config
from acmegate.common.config.model import (
    CertificateTemplateConfig,
    DeviceRoleConditions,
    DeviceRoleConfig,
    InventoryDevice,
    LookupPolicyConfig,
    SanTemplate,
    StaticSourceConfig,
)
from acmegate.policy.sources import StaticSource
from acmegate.policy.validation import validate_config, validate_lookup
from tests.unit.policy.builders import SERIAL, make_config


def test_the_base_configuration_is_valid() -> None:
    assert validate_config(make_config()) == []


def test_every_policy_problem_is_reported_with_its_key(tmp_path: Path) -> None:
    base = make_config()
    lookups = [
        msgspec.structs.replace(base.lookup_policies[0], identity="certificate_san_dns"),
    ]
    config = msgspec.structs.replace(
        base,
        certificate_templates=[
            CertificateTemplateConfig(
                name="t",
                subject="CN=${/source/nickname}",
                san=SanTemplate(dns=["${/csr/san/dnsname}", "${/csr/san/dns}"]),
            )
        ],
        signal_sources=[
            *base.signal_sources,
            StaticSourceConfig(
                name="broken",
                devices=[InventoryDevice(serial_number="A"), InventoryDevice(serial_number="A")],
            ),
            StaticSourceConfig(name="missing", file=str(tmp_path / "nowhere.yaml")),
        ],
        device_roles=[
            DeviceRoleConfig(
                name="r",
                conditions=DeviceRoleConditions(
                    attestation_provider="apple",
                    min_os_version="latest",
                    secure_boot=["Full Security", "Medium Security"],
                ),
            )
        ],
        lookup_policies=lookups,
    )
    problems = validate_config(config)
    assert [p.split(": ")[0] for p in problems] == [
        "$.signal_sources[1].devices[1]",
        "$.signal_sources[2].file",
        "$.certificate_templates[0].subject",
        "$.certificate_templates[0].san.dns[1]",
        "$.certificate_templates[0].san.dns[0]",
        "$.device_roles[0].conditions.min_os_version",
        "$.device_roles[0].conditions.secure_boot[1]",
        "$.policy_workflows[0].conditions.lookup_policy",
    ]
    assert "duplicate serial number 'A'" in problems[0]
    assert f"{tmp_path / 'nowhere.yaml'}: cannot read" in problems[1]
    assert "no signal source offers the attribute 'nickname'" in problems[2]
    assert "${/csr/san/dnsname} comes from the CSR and has no rule" in problems[4]
    assert "unknown secure boot status 'Medium Security'" in problems[6]
    assert "identifies devices by certificate_san_dns" in problems[7]


async def test_validating_a_lookup_shows_the_mapped_attributes_and_groups() -> None:
    report = await validate_lookup(make_config(), "by-serial", SERIAL)
    assert report.ok
    assert report.message == "Account validation succeeded."
    assert report.signal_source == "inventory"
    assert report.managed is True
    assert dict(report.attributes) == {"department": "IT", "email": "alice@example.com"}
    assert list(report.groups) == ["All Managed Clients", "Cert-Eligible"]


async def test_validating_an_unknown_or_unmanaged_identity_fails_with_the_reason() -> None:
    config = make_config()
    unknown = await validate_lookup(config, "by-serial", "C02NOTKNOWN1")
    assert not unknown.ok
    assert unknown.message == "Account validation failed."
    assert unknown.reason == "device C02NOTKNOWN1 is not known to signal source 'inventory'"
    unmanaged = await validate_lookup(config, "by-serial", "C02UNMANAGED")
    assert (unmanaged.ok, unmanaged.message, unmanaged.reason) == (
        False,
        "Account validation failed.",
        "device C02UNMANAGED is not managed",
    )


async def test_a_permanent_identifier_lookup_tries_serial_then_udid() -> None:
    base = make_config()
    config = msgspec.structs.replace(
        base,
        lookup_policies=[
            LookupPolicyConfig(
                name="radius",
                purpose="radius_authentication",
                signal_source="inventory",
                identity="certificate_permanent_identifier",
            )
        ],
    )
    source = base.signal_sources[0]
    assert isinstance(source, StaticSourceConfig)
    live = StaticSource(source)
    report = await validate_lookup(config, "radius", "00008103-001A2B3C4D5E6F70", source=live)
    assert report.ok and report.attributes["department"] == "IT"


ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    "path",
    [
        "examples/dev.yaml",
        "examples/production.yaml",
        "deploy/compose/acmegate.yaml",
        "deploy/k8s/base/acmegate.yaml",
    ],
)
def test_the_shipped_configurations_are_valid_policy_configurations(path: str) -> None:
    config = load_config(ROOT / path)
    # They read their inventory from where they are installed; the file shipped beside them
    # (examples/inventory.yaml for production.yaml) stands in.
    beside = (ROOT / path).parent / "inventory.yaml"
    sources = [
        msgspec.structs.replace(source, file=str(beside))
        if isinstance(source, StaticSourceConfig) and source.file
        else source
        for source in config.signal_sources
    ]
    config = msgspec.structs.replace(config, signal_sources=sources)
    assert validate_config(config) == []
    # Every device template in them guards the CSR values it copies (a server template
    # copies nothing from the CSR: its names are the validated identifiers).
    servers = {p.certificate_template for p in config.enrollment_policies if p.server_names}
    for template in config.certificate_templates:
        if template.name in servers:
            continue
        assert set(template.csr_rules) >= {
            "/csr/san/othername",
            "/csr/san/rfc822name",
            "/csr/san/dnsname",
        }
