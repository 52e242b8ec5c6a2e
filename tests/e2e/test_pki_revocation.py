"""Revocation end to end: a device's certificate verifies with CRL checking (the CRL fetched
from the URL in its CDP) and over OCSP until it is revoked, then fails; ACME revokeCert by the
account key and by the certificate key, and the ways a revocation request is refused."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from acmegate.common.ids import b64url
from acmegate.testkit.acme_session import AcmeProblem, AcmeResponse, AcmeSession
from acmegate.testkit.apple_ca import AttestationCA, LeafClaims
from acmegate.testkit.device import EnrollmentResult, SimulatedDevice
from acmegate.testkit.jws import JwsSigner
from tests.support.gateway import Gateway

pytestmark = pytest.mark.e2e


async def enroll(gateway: Gateway, attestation_ca: AttestationCA, serial: str) -> SimulatedDevice:
    device = SimulatedDevice(
        gateway.directory_url, serial, LeafClaims.macos(serial), attestation_ca
    )
    result = await device.enroll()
    await device.close()
    assert result.ok, result.problems
    device.result = result  # type: ignore[attr-defined]
    return device


def result_of(device: SimulatedDevice) -> EnrollmentResult:
    result: EnrollmentResult = device.result  # type: ignore[attr-defined]
    return result


def write_chain(folder: Path, result: EnrollmentResult) -> tuple[Path, Path]:
    """The leaf and the issuing CA of an enrollment, as PEM files."""
    leaf, *issuers = x509.load_pem_x509_certificates((result.certificate_chain_pem or "").encode())
    (folder / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (folder / "issuing.pem").write_bytes(
        b"".join(c.public_bytes(serialization.Encoding.PEM) for c in issuers)
    )
    return folder / "leaf.pem", folder / "issuing.pem"


def cdp_url(certificate: x509.Certificate) -> str:
    points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    [name] = next(iter(points)).full_name or []
    assert isinstance(name, x509.UniformResourceIdentifier)
    return name.value


def ocsp_url(certificate: x509.Certificate) -> str:
    aia = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    return next(d.access_location.value for d in aia if d.access_method._name == "OCSP")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args),
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


async def fetch_crl(url: str, folder: Path) -> tuple[x509.CertificateRevocationList, Path]:
    """GET the CRL at ``url`` (DER) and keep it as PEM for openssl."""
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200
        assert response.content_type == "application/pkix-crl"
        crl = x509.load_der_x509_crl(await response.read())
    path = folder / "crl.pem"
    path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    return crl, path


async def crl_listing(url: str, folder: Path, serial: int) -> Path:
    """The CRL at ``url`` once it lists ``serial`` (the signer checks every second)."""
    for _ in range(100):
        crl, path = await fetch_crl(url, folder)
        if crl.get_revoked_certificate_by_serial_number(serial) is not None:
            return path
        await asyncio.sleep(0.1)
    raise AssertionError(f"the CRL at {url} never listed {serial:x}")


async def test_a_certificate_passes_crl_and_ocsp_checks_until_an_admin_revokes_it(
    gateway: Gateway, attestation_ca: AttestationCA, database_url: str, tmp_path: Path
) -> None:
    device = await enroll(gateway, attestation_ca, "C02E2E00001")
    certificate = result_of(device).certificate
    assert certificate is not None
    leaf, issuing = write_chain(tmp_path, result_of(device))
    root = gateway.files.root_pem
    assert cdp_url(certificate) == f"{gateway.files.pki_url}/crl/devices.crl"

    def verify(crl: Path) -> str:
        done = run(
            "openssl", "verify", "-crl_check", "-CAfile", str(root), "-untrusted", str(issuing),
            "-CRLfile", str(crl), "-purpose", "sslclient", str(leaf),
        )  # fmt: skip
        return done.stdout + done.stderr

    def ocsp() -> str:
        done = run(
            "openssl", "ocsp", "-issuer", str(issuing), "-cert", str(leaf),
            "-url", ocsp_url(certificate), "-CAfile", str(root),
        )  # fmt: skip
        return done.stdout + done.stderr

    _, crl = await fetch_crl(cdp_url(certificate), tmp_path)
    assert verify(crl).strip().endswith("OK"), verify(crl)
    good = await asyncio.to_thread(ocsp)
    assert f"{leaf}: good" in good and "Response verify OK" in good, good

    serial = format(certificate.serial_number, "x")
    revoked = await asyncio.to_thread(
        run,
        sys.executable, "-m", "acmegate.cli.main", "cert", "revoke", serial.upper(),
        "--reason", "keyCompromise", "--config", str(gateway.files.config_path),
        env={"ACMEGATE_DATABASE_URL": database_url},
    )  # fmt: skip
    assert revoked.returncode == 0, revoked.stdout + revoked.stderr
    assert f"revoked {serial} (keyCompromise)" in revoked.stdout

    crl = await crl_listing(cdp_url(certificate), tmp_path, certificate.serial_number)
    failed = verify(crl)
    assert "certificate revoked" in failed and not failed.strip().endswith("OK"), failed
    text = run("openssl", "crl", "-in", str(crl), "-noout", "-text").stdout
    assert f"Serial Number: {serial.upper()}" in text and "Key Compromise" in text
    answer = await asyncio.to_thread(ocsp)
    assert f"{leaf}: revoked" in answer and "Reason: keyCompromise" in answer, answer


async def revoke_cert(
    session: AcmeSession,
    certificate: x509.Certificate,
    *,
    reason: int | None = None,
    signer: JwsSigner | None = None,
) -> AcmeResponse:
    """POST revokeCert, signed with the session's account (``kid``) or with ``signer``'s key
    in a ``jwk`` header; the response, problems included."""
    url = await session.url_of("revokeCert")
    payload: dict[str, object] = {
        "certificate": b64url(certificate.public_bytes(serialization.Encoding.DER))
    }
    if reason is not None:
        payload["reason"] = reason
    jws = session.sign(
        url, payload, nonce=await session.take_nonce(), use_jwk=signer is not None, signer=signer
    )
    return await session.post_raw(url, jws)


def problem_kind(response: AcmeResponse) -> str:
    problem = response.problem()
    assert isinstance(problem, AcmeProblem), (response.status, response.text)
    return problem.kind


async def signer_status(gateway: Gateway, certificate: x509.Certificate) -> tuple[str, str | None]:
    serial = format(certificate.serial_number, "x")
    for _ in range(100):
        row = await gateway.pool.fetchrow(
            "SELECT status, revocation_reason FROM pki.certificates WHERE serial = $1", serial
        )
        assert row is not None
        if row["status"] == "revoked":
            break
        await asyncio.sleep(0.05)
    return row["status"], row["revocation_reason"]


async def test_acme_revoke_cert_by_the_account_key_then_already_revoked(
    gateway: Gateway, attestation_ca: AttestationCA, tmp_path: Path
) -> None:
    device = await enroll(gateway, attestation_ca, "C02E2E00001")
    certificate = result_of(device).certificate
    assert certificate is not None
    async with AcmeSession(
        gateway.directory_url, device.account, account_url=result_of(device).account_url
    ) as acme:
        first = await revoke_cert(acme, certificate, reason=1)
        assert first.status == 200, first.text
        assert first.nonce
        assert await signer_status(gateway, certificate) == ("revoked", "keyCompromise")
        again = await revoke_cert(acme, certificate, reason=4)
        assert again.status == 400 and problem_kind(again) == "alreadyRevoked"
    # The first reason stands, and the CRL at the certificate's CDP lists it.
    assert await signer_status(gateway, certificate) == ("revoked", "keyCompromise")
    await crl_listing(cdp_url(certificate), tmp_path, certificate.serial_number)


async def test_acme_revoke_cert_by_the_certificates_own_key(
    gateway: Gateway, attestation_ca: AttestationCA
) -> None:
    device = await enroll(gateway, attestation_ca, "C02E2E00002")
    certificate = result_of(device).certificate
    assert certificate is not None
    async with AcmeSession(gateway.directory_url) as stranger:
        # No account at all: the certificate key alone authorizes (RFC 8555 §7.6).
        response = await revoke_cert(stranger, certificate, signer=JwsSigner(device.device_key))
        assert response.status == 200, response.text
        again = await revoke_cert(stranger, certificate, signer=JwsSigner(device.device_key))
        assert problem_kind(again) == "alreadyRevoked"
    assert await signer_status(gateway, certificate) == ("revoked", "unspecified")


async def test_revocation_requests_that_are_refused(
    gateway: Gateway, attestation_ca: AttestationCA
) -> None:
    device = await enroll(gateway, attestation_ca, "DMQE2EPHONE")
    certificate = result_of(device).certificate
    assert certificate is not None
    async with AcmeSession(gateway.directory_url) as other:
        await other.new_account()
        # Another account's key.
        response = await revoke_cert(other, certificate)
        assert response.status == 403 and problem_kind(response) == "unauthorized"
        # A key that is neither the account's nor the certificate's, in a jwk header.
        stranger = JwsSigner(ec.generate_private_key(ec.SECP384R1()))
        response = await revoke_cert(other, certificate, signer=stranger)
        assert response.status == 403 and problem_kind(response) == "unauthorized"
        # A certificate with our serial but not ours (signed by someone else's key).
        forged = (
            x509.CertificateBuilder()
            .subject_name(certificate.subject)
            .issuer_name(certificate.issuer)
            .public_key(stranger.key.public_key())  # type: ignore[arg-type]
            .serial_number(certificate.serial_number)
            .not_valid_before(certificate.not_valid_before_utc)
            .not_valid_after(certificate.not_valid_after_utc)
            .sign(stranger.key, certificate.signature_hash_algorithm)  # type: ignore[arg-type]
        )
        response = await revoke_cert(other, forged, signer=stranger)
        assert response.status == 404, response.text
    async with AcmeSession(
        gateway.directory_url, device.account, account_url=result_of(device).account_url
    ) as owner:
        for reason in (6, 2, 7, 11):
            response = await revoke_cert(owner, certificate, reason=reason)
            assert problem_kind(response) == "badRevocationReason", reason
    status = await gateway.pool.fetchval(
        "SELECT status FROM pki.certificates WHERE serial = $1",
        format(certificate.serial_number, "x"),
    )
    assert status == "valid"
