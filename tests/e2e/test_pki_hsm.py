"""A full enrollment signed by a CA whose key lives in a PKCS#11 token (SoftHSM2), and an
OCSP response of that key that a relying party verifies with the root alone."""

from __future__ import annotations

import subprocess
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from acmegate.signer.setup.create import init_ca
from acmegate.signer.setup.files import TokenKey
from acmegate.testkit.apple_ca import AttestationCA, LeafClaims
from acmegate.testkit.device import SimulatedDevice
from tests.support.gateway import PASSPHRASE, gateway_config, running_gateway
from tests.support.softhsm import softhsm

pytestmark = pytest.mark.e2e


async def test_a_device_enrolls_with_the_ca_key_in_a_token(
    tmp_path: Path,
    attestation_ca: AttestationCA,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hsm = softhsm()
    monkeypatch.setenv("ACMEGATE_PKCS11_PIN", hsm.pin)
    folder = tmp_path / "gateway"
    ca = init_ca(
        folder / "token-ca",
        name="devices",
        common_name="E2E Token CA",
        subject=[("O", "acmegate tests")],
        key_type="ec-p384",
        hash="sha384",
        passphrase=PASSPHRASE,
        token=TokenKey(hsm.module, hsm.token_label, f"e2e-{tmp_path.name}", hsm.pin),
    )
    files = gateway_config(
        folder,
        attestation_ca,
        overrides={
            "certificate_authorities": [
                {
                    "name": "devices",
                    "certificate": "token-ca/devices.pem",
                    "chain": ["token-ca/root.pem"],
                    "key": {
                        "type": "pkcs11",
                        "module": hsm.module,
                        "token_label": hsm.token_label,
                        "key_label": f"e2e-{tmp_path.name}",
                        "pin": {"env": "ACMEGATE_PKCS11_PIN"},
                    },
                }
            ]
        },
    )
    async with running_gateway(files, database_url) as gateway:
        signer = gateway.running.services["signer"]
        authority = signer.authorities["devices"]  # type: ignore[attr-defined]
        assert authority.key.description.startswith("PKCS#11 token")
        device = SimulatedDevice(
            gateway.directory_url, "C02E2E00001", LeafClaims.macos("C02E2E00001"), attestation_ca
        )
        try:
            result = await device.enroll()
        finally:
            await device.close()
        assert result.ok, result.problems
        leaf, issuing = x509.load_pem_x509_certificates(
            (result.certificate_chain_pem or "").encode()
        )
        request = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuing, hashes.SHA1()).build()
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{files.pki_url}/ocsp/devices",
                data=request.public_bytes(serialization.Encoding.DER),
                headers={"Content-Type": "application/ocsp-request"},
            ) as answer,
        ):
            (tmp_path / "ocsp.der").write_bytes(await answer.read())

    # The token-signed response carries the CA certificate: no -issuer needed to verify it.
    response = ocsp.load_der_ocsp_response((tmp_path / "ocsp.der").read_bytes())
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert response.certificates == [issuing]
    done = subprocess.run(  # noqa: ASYNC221 (a short openssl run at the end of the test)
        ["openssl", "ocsp", "-respin", str(tmp_path / "ocsp.der"), "-CAfile", str(ca.chain[0])],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "Response verify OK" in done.stdout + done.stderr, done.stdout + done.stderr

    leaf, issuing = x509.load_pem_x509_certificates((result.certificate_chain_pem or "").encode())
    assert issuing.subject.rfc4514_string() == "CN=E2E Token CA,O=acmegate tests"
    leaf.verify_directly_issued_by(issuing)
    (tmp_path / "leaf.pem").write_text(result.certificate_chain_pem or "")
    (tmp_path / "issuing.pem").write_bytes(ca.certificate.read_bytes())
    done = subprocess.run(  # noqa: ASYNC221 (a short openssl run at the end of the test)
        ["openssl", "verify", "-CAfile", str(ca.chain[0]), "-untrusted",
         str(tmp_path / "issuing.pem"), "-purpose", "sslclient", str(tmp_path / "leaf.pem")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.stdout.strip().endswith("OK"), done.stdout + done.stderr
