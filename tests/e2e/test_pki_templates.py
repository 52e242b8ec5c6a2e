"""Template edge cases end to end: what a device sees when a template cannot be filled, and
that what it can be filled with is certified cleanly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from acmegate.testkit.apple_ca import AttestationCA, LeafClaims
from acmegate.testkit.device import EnrollmentResult, SimulatedDevice, Stage
from tests.support.gateway import Gateway, gateway_config, running_gateway
from tests.unit.signer.helpers import lint_certificate

pytestmark = pytest.mark.e2e

TEMPLATE = {
    "name": "wifi",
    # The CN comes from the CSR's DNS name: a long one makes an over-long CN.
    "subject": "CN=${/csr/san/dnsname},O=acmegate tests",
    "san": {
        "dns": ["${/csr/san/dnsname}", "${/csr/san/dnsname}"],
        "permanent_identifier": ["${/device/serialnumber}"],
        "rfc822": ["${/source/email}"],
        "other_name": ["${/csr/san/othername}"],
    },
    "csr_rules": {
        "/csr/san/dnsname": {"matches": r"[a-z0-9.-]+\.example\.com"},
        "/csr/san/othername": {"equals": "${/source/email}"},
    },
    "required": ["san.dns"],
    "validity": "30d",
    "key_usage": ["digital_signature", "key_encipherment"],
    "extended_key_usage": ["client_auth"],
}


@pytest.fixture
async def gateway(
    tmp_path: Path, attestation_ca: AttestationCA, database_url: str
) -> AsyncIterator[Gateway]:
    files = gateway_config(
        tmp_path / "gateway",
        attestation_ca,
        overrides={
            "attestation_providers": [
                {
                    "name": "apple",
                    "type": "apple",
                    "roots": ["attestation-ca/root.pem"],
                    "csr_common_name": "any",
                }
            ],
            "certificate_templates": [TEMPLATE],
            "enrollment_policies": [
                {
                    "name": "managed-apple-devices",
                    "role": "managed-devices",
                    "device_role": "attested-apple",
                    "certificate_authority": "devices",
                    "certificate_template": "wifi",
                }
            ],
        },
    )
    async with running_gateway(files, database_url) as running:
        yield running


async def enroll(
    gateway: Gateway, attestation_ca: AttestationCA, sans: dict[str, str | list[str]]
) -> EnrollmentResult:
    device = SimulatedDevice(
        gateway.directory_url,
        "C02E2E00001",
        LeafClaims.macos("C02E2E00001"),
        attestation_ca,
        subject=[("CN", "C02E2E00001")],
        subject_alt_name=sans,
    )
    try:
        return await device.enroll()
    finally:
        await device.close()


async def test_a_required_value_the_csr_lacks_is_a_clear_bad_csr(
    gateway: Gateway, attestation_ca: AttestationCA
) -> None:
    result = await enroll(gateway, attestation_ca, {"ntPrincipalName": "llama@example.com"})
    assert result.failed_stage is Stage.FINALIZE
    assert result.problem is not None and result.problem.kind == "badCSR"
    assert "template 'wifi' needs ${/csr/san/dnsname}" in result.problem.detail
    assert await gateway.pool.fetchval("SELECT count(*) FROM pki.certificates") == 0


async def test_a_value_too_long_for_the_common_name_is_a_clear_bad_csr(
    gateway: Gateway, attestation_ca: AttestationCA
) -> None:
    long_name = "a" * 40 + "." + "b" * 20 + ".example.com"  # 73 characters
    result = await enroll(gateway, attestation_ca, {"dNSName": long_name})
    assert result.problem is not None and result.problem.kind == "badCSR", result.problems
    assert "CN" in result.problem.detail and "64" in result.problem.detail


async def test_a_filled_template_is_certified_once_per_name_and_lints_clean(
    gateway: Gateway, attestation_ca: AttestationCA
) -> None:
    result = await enroll(
        gateway,
        attestation_ca,
        {
            "dNSName": ["llama.example.com", "llama.example.com"],
            "ntPrincipalName": "llama@example.com",
        },
    )
    assert result.ok, result.problems
    leaf = result.certificate
    assert leaf is not None
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["llama.example.com"]
    assert san.get_values_for_type(x509.RFC822Name) == ["llama@example.com"]
    # The device key is EC: keyEncipherment is left out (RFC 5480 §3).
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_encipherment
    assert lint_certificate(leaf.public_bytes(serialization.Encoding.DER)) == []
