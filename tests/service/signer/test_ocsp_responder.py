"""The OCSP responder as relying parties meet it: responses they can verify on their own
(FreeRADIUS, ``openssl ocsp -respin`` without ``-issuer``), HTTP caching of GET answers
(RFC 5019 §6.2), the request checks of RFC 8954 (nonce length) and RFC 5280 §4.2 (critical
extensions), and one signature per certificate status rather than one per request."""

from __future__ import annotations

import asyncio
import base64
import email.utils
import hashlib
import subprocess
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from acmegate.common.messages import RevokeCertificates
from acmegate.signer.db.revocations import revoke_certificates
from acmegate.signer.service import SignerService
from tests.service.signer.conftest import SignerWorld
from tests.service.signer.test_revocation_publishing import REVOKE, issue, pki_config


def request_der(
    certificate: x509.Certificate,
    issuer: x509.Certificate,
    *,
    nonce: bytes | None = None,
    extension: x509.UnrecognizedExtension | None = None,
    critical: bool = False,
) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    if extension is not None:
        builder = builder.add_extension(extension, critical=critical)
    return builder.build().public_bytes(serialization.Encoding.DER)


async def post(http: aiohttp.ClientSession, url: str, body: bytes) -> bytes:
    async with http.post(
        url, data=body, headers={"Content-Type": "application/ocsp-request"}
    ) as response:
        assert response.status == 200
        assert response.content_type == "application/ocsp-response"
        return await response.read()


@dataclass
class Responder:
    """A signer serving OCSP, its CA certificate, one certificate it issued, the OCSP URL."""

    signer: SignerService
    ca: x509.Certificate
    certificate: x509.Certificate
    base_url: str

    @property
    def url(self) -> str:
        return f"{self.base_url}/ocsp/issuing"


async def responder(world: SignerWorld) -> Responder:
    config = pki_config(world)
    assert config.pki is not None
    signer = await world.start_signer(config_override=config)
    ca = x509.load_pem_x509_certificate(world.files.certificate.read_bytes())
    return Responder(signer, ca, await issue(world, signer, "o1"), config.pki.base_url)


def status_of(der: bytes) -> ocsp.OCSPResponseStatus:
    return ocsp.load_der_ocsp_response(der).response_status


async def test_a_response_carries_its_signer_and_verifies_against_the_root_alone(
    world: SignerWorld, tmp_path: Path
) -> None:
    # FreeRADIUS (OCSP_basic_verify without extra certificates) and `openssl ocsp -respin`
    # find the signer only inside the response: without it every device was rejected.
    served = await responder(world)
    ca, certificate = served.ca, served.certificate
    async with aiohttp.ClientSession() as http:
        der = await post(http, served.url, request_der(certificate, ca))
    response = ocsp.load_der_ocsp_response(der)
    assert response.certificates == [ca]
    (tmp_path / "response.der").write_bytes(der)
    done = subprocess.run(  # noqa: ASYNC221 (a short openssl run)
        ["openssl", "ocsp", "-respin", str(tmp_path / "response.der"),
         "-CAfile", str(world.files.chain[0]), "-resp_text"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "Response verify OK" in done.stderr + done.stdout, done.stderr + done.stdout


async def test_get_answers_carry_the_caching_headers_of_rfc_5019(world: SignerWorld) -> None:
    served = await responder(world)
    ca, certificate = served.ca, served.certificate
    encoded = quote(base64.b64encode(request_der(certificate, ca)).decode(), safe="")
    url = f"{served.base_url}/ocsp/issuing/{encoded}"
    async with aiohttp.ClientSession() as http, http.get(url) as answer:
        assert answer.status == 200
        der = await answer.read()
        headers = answer.headers
    response = ocsp.load_der_ocsp_response(der)
    assert response.next_update_utc is not None
    now = world.clock.now()
    max_age = int((response.next_update_utc - now).total_seconds())
    assert headers["Cache-Control"] == f"max-age={max_age}, public, no-transform, must-revalidate"
    assert headers["ETag"] == f'"{hashlib.sha256(der).hexdigest()}"'
    modified = email.utils.parsedate_to_datetime(headers["Last-Modified"])
    assert modified == response.this_update_utc
    assert email.utils.parsedate_to_datetime(headers["Expires"]) == response.next_update_utc

    # A request with a nonce gets an answer for it alone: no shared cache may keep it.
    with_nonce = quote(
        base64.b64encode(request_der(certificate, ca, nonce=b"n" * 16)).decode(), safe=""
    )
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{served.base_url}/ocsp/issuing/{with_nonce}") as answer,
    ):
        assert answer.status == 200
        assert answer.headers["Cache-Control"] == "no-store"
        assert "ETag" not in answer.headers


async def test_nonces_longer_than_32_bytes_and_unknown_critical_extensions_are_refused(
    world: SignerWorld,
) -> None:
    served = await responder(world)
    ca, certificate = served.ca, served.certificate
    url = served.url
    malformed = ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\x00")
    async with aiohttp.ClientSession() as http:
        # RFC 8954 §2.1: Nonce ::= OCTET STRING (SIZE(1..32)); longer ones MUST be refused.
        for size in (33, 128):
            der = await post(http, url, request_der(certificate, ca, nonce=b"x" * size))
            assert status_of(der) is malformed, size
        der = await post(http, url, request_der(certificate, ca, nonce=b""))
        assert status_of(der) is malformed
        der = await post(http, url, request_der(certificate, ca, nonce=b"y" * 32))
        echoed = ocsp.load_der_ocsp_response(der)
        assert echoed.certificate_status is ocsp.OCSPCertStatus.GOOD
        assert echoed.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"y" * 32
        # RFC 5280 §4.2 (RFC 6960 §4.4): an unrecognised critical extension cannot be ignored.
        der = await post(http, url, request_der(certificate, ca, extension=unknown, critical=True))
        assert status_of(der) is malformed
        # A non-critical one can.
        der = await post(http, url, request_der(certificate, ca, extension=unknown))
        assert ocsp.load_der_ocsp_response(der).certificate_status is ocsp.OCSPCertStatus.GOOD


async def test_a_response_is_signed_once_per_status_and_reused_until_half_its_validity(
    world: SignerWorld,
) -> None:
    served = await responder(world)
    signer, ca, certificate = served.signer, served.ca, served.certificate
    other = await issue(world, signer, "o2")
    url = served.url
    async with aiohttp.ClientSession() as http:
        first = await post(http, url, request_der(certificate, ca))
        assert world.ledger.ocsp_signatures == 1
        for _ in range(5):
            assert await post(http, url, request_der(certificate, ca)) == first
        assert world.ledger.ocsp_signatures == 1
        # Per certificate, and a nonce always gets its own signature (it is echoed).
        await post(http, url, request_der(other, ca))
        await post(http, url, request_der(certificate, ca, nonce=b"n" * 16))
        await post(http, url, request_der(certificate, ca, nonce=b"m" * 16))
        assert world.ledger.ocsp_signatures == 4

        # Revoked by another process (the CLI, another replica): never the cached "good".
        await revoke_certificates(
            world.pool,
            serials=[format(certificate.serial_number, "x")],
            reason="keyCompromise",
            at=world.clock.now(),
        )
        revoked = ocsp.load_der_ocsp_response(await post(http, url, request_der(certificate, ca)))
        assert revoked.certificate_status is ocsp.OCSPCertStatus.REVOKED
        assert revoked.revocation_reason is x509.ReasonFlags.key_compromise
        assert world.ledger.ocsp_signatures == 5

        # Revoked through this signer: the same.
        await signer.on_revoke(
            RevokeCertificates(
                correlation_id="r",
                reason="superseded",
                serials=[format(other.serial_number, "x")],
            ),
            REVOKE,
        )
        second = ocsp.load_der_ocsp_response(await post(http, url, request_der(other, ca)))
        assert second.certificate_status is ocsp.OCSPCertStatus.REVOKED
        assert world.ledger.ocsp_signatures == 6

        # Half the validity (pki.ocsp_validity, 1 h here) later, a fresh one is signed.
        world.clock.at += timedelta(minutes=29)
        await post(http, url, request_der(certificate, ca))
        assert world.ledger.ocsp_signatures == 6
        world.clock.at += timedelta(minutes=2)
        renewed = ocsp.load_der_ocsp_response(await post(http, url, request_der(certificate, ca)))
        assert world.ledger.ocsp_signatures == 7
        assert renewed.this_update_utc == world.clock.now()


async def test_concurrent_requests_for_one_certificate_are_answered_alike(
    world: SignerWorld,
) -> None:
    served = await responder(world)
    ca, certificate = served.ca, served.certificate
    url = served.url
    async with aiohttp.ClientSession() as http:
        answers = await asyncio.gather(
            *(post(http, url, request_der(certificate, ca)) for _ in range(20))
        )
    assert all(ocsp.load_der_ocsp_response(a).certificate_status.name == "GOOD" for a in answers)
