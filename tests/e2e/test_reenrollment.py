"""Re-enrollment of one device (docs/profiles.md): with ``previous_certificates: revoke`` the
second certificate, once downloaded, supersedes the first (OCSP and the CRL say so); with the
default ``keep`` both stay valid; a ``renewal_window`` refuses an early second enrollment."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from acmegate.testkit.apple_ca import AttestationCA, LeafClaims
from acmegate.testkit.device import SimulatedDevice, Stage
from tests.e2e.test_pki_revocation import (
    cdp_url,
    crl_listing,
    enroll,
    ocsp_url,
    result_of,
    run,
    write_chain,
)
from tests.support.gateway import Gateway, GatewayFiles, gateway_config, running_gateway

pytestmark = pytest.mark.e2e

SERIAL = "C02E2E00002"
POLICY: dict[str, Any] = {
    "name": "managed-apple-devices",
    "role": "managed-devices",
    "device_role": "attested-apple",
    "certificate_authority": "devices",
    "certificate_template": "device",
}


def ocsp(folder: Path, issuing: Path, leaf: Path, root: Path, certificate: x509.Certificate) -> str:
    done = run(
        "openssl", "ocsp", "-issuer", str(issuing), "-cert", str(leaf),
        "-url", ocsp_url(certificate), "-CAfile", str(root),
    )  # fmt: skip
    return done.stdout + done.stderr


@pytest.fixture
async def superseding(
    tmp_path: Path, attestation_ca: AttestationCA, database_url: str
) -> AsyncIterator[Gateway]:
    policy = {**copy.deepcopy(POLICY), "previous_certificates": "revoke"}
    files: GatewayFiles = gateway_config(
        tmp_path / "gateway", attestation_ca, overrides={"enrollment_policies": [policy]}
    )
    async with running_gateway(files, database_url) as running:
        yield running


async def test_a_second_enrollment_supersedes_the_first_once_downloaded(
    superseding: Gateway, attestation_ca: AttestationCA, tmp_path: Path
) -> None:
    gateway = superseding
    first = result_of(await enroll(gateway, attestation_ca, SERIAL))
    assert first.certificate is not None
    (tmp_path / "first").mkdir()
    leaf, issuing = write_chain(tmp_path / "first", first)
    root = gateway.files.root_pem
    answer = await asyncio.to_thread(ocsp, tmp_path, issuing, leaf, root, first.certificate)
    assert f"{leaf}: good" in answer, answer

    second = result_of(await enroll(gateway, attestation_ca, SERIAL))
    assert second.certificate is not None
    assert second.certificate.serial_number != first.certificate.serial_number

    crl = await crl_listing(cdp_url(first.certificate), tmp_path, first.certificate.serial_number)
    text = run("openssl", "crl", "-in", str(crl), "-noout", "-text").stdout
    assert f"Serial Number: {first.certificate.serial_number:X}" in text
    assert "Superseded" in text
    # Only the first: the new certificate is not on the CRL.
    listed = x509.load_pem_x509_crl(crl.read_bytes())
    assert listed.get_revoked_certificate_by_serial_number(second.certificate.serial_number) is None

    answer = await asyncio.to_thread(ocsp, tmp_path, issuing, leaf, root, first.certificate)
    assert f"{leaf}: revoked" in answer and "Reason: superseded" in answer, answer
    (tmp_path / "second").mkdir()
    leaf2, issuing2 = write_chain(tmp_path / "second", second)
    answer = await asyncio.to_thread(ocsp, tmp_path, issuing2, leaf2, root, second.certificate)
    assert f"{leaf2}: good" in answer, answer


async def test_by_default_older_certificates_are_kept(
    gateway: Gateway, attestation_ca: AttestationCA, tmp_path: Path
) -> None:
    first = result_of(await enroll(gateway, attestation_ca, SERIAL))
    second = result_of(await enroll(gateway, attestation_ca, SERIAL))
    assert first.certificate is not None and second.certificate is not None
    leaf, issuing = write_chain(tmp_path, first)
    answer = await asyncio.to_thread(
        ocsp, tmp_path, issuing, leaf, gateway.files.root_pem, first.certificate
    )
    assert f"{leaf}: good" in answer, answer


@pytest.fixture
async def windowed(
    tmp_path: Path, attestation_ca: AttestationCA, database_url: str
) -> AsyncIterator[Gateway]:
    policy = {**copy.deepcopy(POLICY), "renewal_window": "1h"}
    files: GatewayFiles = gateway_config(
        tmp_path / "gateway", attestation_ca, overrides={"enrollment_policies": [policy]}
    )
    async with running_gateway(files, database_url) as running:
        yield running


async def test_a_renewal_window_refuses_an_early_re_enrollment(
    windowed: Gateway, attestation_ca: AttestationCA
) -> None:
    first = result_of(await enroll(windowed, attestation_ca, SERIAL))
    assert first.certificate is not None

    device = SimulatedDevice(
        windowed.directory_url, SERIAL, LeafClaims.macos(SERIAL), attestation_ca
    )
    try:
        again = await device.enroll()
    finally:
        await device.close()
    assert not again.ok and again.problem is not None
    assert again.failed_stage == Stage.FINALIZE
    assert again.problem.kind == "rateLimited" and again.problem.status == 429
    assert "renewal window (1h) allows the next one in" in again.problem.detail
    wait = int(again.problem.detail.rsplit(" in ", 1)[1].removesuffix(" s"))
    assert 3500 < wait <= 3600

    # Another device is not held back by this one's window.
    other = result_of(await enroll(windowed, attestation_ca, "C02E2E00001"))
    assert other.certificate is not None
