"""Device management platforms: their .mobileconfig, and enrollment tokens as ClientIdentifier."""

from __future__ import annotations

import asyncio
import os
import plistlib
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from acmegate.common.clock import SystemClock
from acmegate.frontend.platforms import live_token, rotate_token
from acmegate.testkit.apple_ca import AttestationCA, LeafClaims
from acmegate.testkit.device import SimulatedDevice, Stage
from tests.support.gateway import Gateway, GatewayFiles, gateway_config, running_gateway

pytestmark = pytest.mark.e2e

# Every key Apple documents for com.apple.security.acme that a platform profile sets
# (docs/apple-attestation.md §11; SubjectAltName/UsageFlags/ExtendedKeyUsage are set in this test's
# config).
ACME_KEYS = {
    "PayloadType",
    "PayloadVersion",
    "PayloadIdentifier",
    "PayloadUUID",
    "PayloadDisplayName",
    "DirectoryURL",
    "ClientIdentifier",
    "KeySize",
    "KeyType",
    "HardwareBound",
    "Attest",
    "Subject",
    "SubjectAltName",
    "UsageFlags",
    "ExtendedKeyUsage",
}


def signing_material(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Profile Signing")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "signing.pem", folder / "signing.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def files(tmp_path: Path, attestation_ca: AttestationCA) -> GatewayFiles:
    folder = tmp_path / "gw"
    folder.mkdir()
    cert, key = signing_material(folder)
    template = {
        "name": "jamf-template",
        "subject": "CN=${/csr/subject/commonname},OU=Jamf enrolled",
        "san": {"permanent_identifier": ["${/device/serialnumber}"]},
        "validity": "30d",
    }
    return gateway_config(
        folder,
        attestation_ca,
        overrides={
            "device_management_platforms": [
                {
                    "name": "jamf-macs",
                    "description": "Jamf Pro Macs",
                    "vendor": "jamf_pro",
                    "profile": {
                        "subject": "CN=$SERIALNUMBER,O=Example",
                        "client_identifier": "token",
                        "subject_alt_name": {"dNSName": "$SERIALNUMBER.example.com"},
                        "usage_flags": 1,
                        "extended_key_usage": ["client_auth"],
                    },
                },
                {
                    "name": "jamf-serial",
                    "profile": {"client_identifier": "$SERIALNUMBER"},
                },
                {
                    "name": "jamf-signed",
                    "profile": {
                        "signing_certificate": str(cert),
                        "signing_key": {"file": str(key)},
                    },
                },
            ],
            "certificate_templates": [
                *gateway_config_templates(folder, attestation_ca),
                template,
            ],
            "enrollment_policies": [
                {
                    "name": "through-jamf",
                    "platforms": ["jamf-macs"],
                    "role": "managed-devices",
                    "device_role": "attested-apple",
                    "certificate_authority": "devices",
                    "certificate_template": "jamf-template",
                },
                {
                    "name": "managed-apple-devices",
                    "role": "managed-devices",
                    "device_role": "attested-apple",
                    "certificate_authority": "devices",
                    "certificate_template": "device",
                },
            ],
        },
    )


def gateway_config_templates(folder: Path, ca: AttestationCA) -> list[dict[str, object]]:
    """The default test templates (read back from a default configuration)."""
    import yaml

    default = gateway_config(folder / "default", ca)
    return list(yaml.safe_load(default.config_path.read_text())["certificate_templates"])


@pytest.fixture
async def gateway(files: GatewayFiles, database_url: str) -> AsyncIterator[Gateway]:
    async with running_gateway(files, database_url) as running:
        yield running


def profile_cli(
    files: GatewayFiles, database_url: str, name: str
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "acmegate.cli.main",
            "profile",
            name,
            "--config",
            str(files.config_path),
        ],
        capture_output=True,
        env={**os.environ, "ACMEGATE_DATABASE_URL": database_url},
        timeout=60,
        check=False,
    )


async def enroll(gateway: Gateway, ca: AttestationCA, identifier: str, serial: str):  # type: ignore[no-untyped-def]
    device = SimulatedDevice(
        gateway.directory_url, identifier, LeafClaims.macos(serial), ca, subject=[("CN", serial)]
    )
    try:
        return await device.enroll()
    finally:
        await device.close()


async def test_the_profile_parses_and_carries_every_acme_payload_key(
    gateway: Gateway, database_url: str
) -> None:
    done = await asyncio.to_thread(profile_cli, gateway.files, database_url, "jamf-macs")
    assert done.returncode == 0, done.stderr.decode()
    profile = plistlib.loads(done.stdout)
    assert profile["PayloadType"] == "Configuration"
    assert profile["PayloadVersion"] == 1
    [payload] = profile["PayloadContent"]
    assert ACME_KEYS <= set(payload)
    assert payload["PayloadType"] == "com.apple.security.acme"
    assert payload["DirectoryURL"] == gateway.directory_url
    assert payload["KeySize"] == 384 and payload["KeyType"] == "ECSECPrimeRandom"
    assert payload["HardwareBound"] is True and payload["Attest"] is True
    assert payload["Subject"] == [[["CN", "$SERIALNUMBER"]], [["O", "Example"]]]
    assert payload["ClientIdentifier"].startswith("agt-") and "/" not in payload["ClientIdentifier"]
    assert payload["ExtendedKeyUsage"] == ["1.3.6.1.5.5.7.3.2"]
    token = await live_token(gateway.pool, gateway.config, "jamf-macs", SystemClock().now())
    assert payload["ClientIdentifier"] == token.token
    # What to type into Jamf's own ACME Certificate form.
    form = done.stderr.decode()
    assert "ECSECPrimeRandom" in form and "/CN=$SERIALNUMBER/O=Example" in form
    # Downloading again gives the same token and UUIDs (the MDM replaces, not duplicates).
    again = plistlib.loads(
        (await asyncio.to_thread(profile_cli, gateway.files, database_url, "jamf-macs")).stdout
    )
    assert again["PayloadUUID"] == profile["PayloadUUID"]
    assert again["PayloadContent"][0]["ClientIdentifier"] == payload["ClientIdentifier"]


async def test_a_serial_style_platform_sends_the_jamf_variable(
    gateway: Gateway, database_url: str
) -> None:
    done = await asyncio.to_thread(profile_cli, gateway.files, database_url, "jamf-serial")
    payload = plistlib.loads(done.stdout)["PayloadContent"][0]
    assert payload["ClientIdentifier"] == "$SERIALNUMBER"


async def test_a_signed_profile_is_cms_over_the_same_plist(
    gateway: Gateway, database_url: str
) -> None:
    done = await asyncio.to_thread(profile_cli, gateway.files, database_url, "jamf-signed")
    assert done.returncode == 0, done.stderr.decode()
    signed = done.stdout
    assert not signed.startswith(b"<?xml")
    certificates = pkcs7.load_der_pkcs7_certificates(signed)
    assert certificates[0].subject.rfc4514_string() == "CN=Profile Signing"
    verified = await asyncio.to_thread(
        subprocess.run,
        ["openssl", "smime", "-verify", "-inform", "DER", "-noverify"],
        input=signed,
        capture_output=True,
        check=False,
    )
    assert verified.returncode == 0, verified.stderr
    assert (
        plistlib.loads(verified.stdout)["PayloadContent"][0]["PayloadType"]
        == "com.apple.security.acme"
    )


async def test_an_unknown_platform_is_a_clear_cli_error(
    gateway: Gateway, database_url: str
) -> None:
    done = await asyncio.to_thread(profile_cli, gateway.files, database_url, "nope")
    assert done.returncode == 2
    assert b"no device management platform named 'nope'" in done.stderr


async def test_a_device_enrolls_with_the_platforms_token_and_the_order_records_it(
    gateway: Gateway, attestation_ca: AttestationCA
) -> None:
    token = await live_token(gateway.pool, gateway.config, "jamf-macs", SystemClock().now())
    result = await enroll(gateway, attestation_ca, token.token, "C02E2E00001")
    assert result.ok, result.problems
    leaf = result.certificate
    assert leaf is not None
    # The platform's enrollment policy (and its template) was chosen.
    assert (
        leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value
        == "Jamf enrolled"
    )
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "C02E2E00001"
    platform = await gateway.pool.fetchval(
        "SELECT platform FROM acme.orders WHERE id = $1", result.order_url.rsplit("/", 1)[1]
    )
    assert platform == "jamf-macs"


async def test_a_device_enrolls_with_its_serial_as_client_identifier(
    gateway: Gateway, attestation_ca: AttestationCA
) -> None:
    result = await enroll(gateway, attestation_ca, "C02E2E00002", "C02E2E00002")
    assert result.ok, result.problems
    assert (
        not result.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[
            0
        ].value
        == "Jamf enrolled"
    )


async def test_a_rotated_out_token_is_refused(
    gateway: Gateway, attestation_ca: AttestationCA
) -> None:
    old = await live_token(gateway.pool, gateway.config, "jamf-macs", SystemClock().now())
    new = await rotate_token(gateway.pool, gateway.config, "jamf-macs", SystemClock().now())
    assert new.token != old.token
    refused = await enroll(gateway, attestation_ca, old.token, "C02E2E00001")
    assert refused.failed_stage is Stage.NEW_ORDER
    assert refused.problem is not None and refused.problem.kind == "rejectedIdentifier"
    assert old.token not in refused.problem.detail
    accepted = await enroll(gateway, attestation_ca, new.token, "C02E2E00001")
    assert accepted.ok, accepted.problems


async def test_an_unknown_token_is_refused(gateway: Gateway, attestation_ca: AttestationCA) -> None:
    refused = await enroll(gateway, attestation_ca, "agt-thisIsNotAToken", "C02E2E00001")
    assert refused.problem is not None and refused.problem.kind == "rejectedIdentifier"


async def test_a_token_enrollment_still_needs_a_device_the_inventory_knows(
    gateway: Gateway, attestation_ca: AttestationCA
) -> None:
    token = await live_token(gateway.pool, gateway.config, "jamf-macs", SystemClock().now())
    refused = await enroll(gateway, attestation_ca, token.token, "C02NOTKNOWN")
    assert refused.failed_stage is Stage.FINALIZE
    assert refused.problem is not None and refused.problem.kind == "rejectedIdentifier"
