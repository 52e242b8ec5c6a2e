"""Revocations reach the CRL and the OCSP responder, whoever made them, on every replica."""

from __future__ import annotations

import asyncio
import base64
import subprocess
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import aiohttp
import msgspec
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtensionOID

from acmegate.common.bus import Delivery, Queue
from acmegate.common.config import Config
from acmegate.common.config.model import PkiConfig
from acmegate.common.messages import RevokeCertificates
from acmegate.signer.db.crls import StoredCrl, latest_crl
from acmegate.signer.db.revocations import revoke_certificates
from acmegate.signer.service import SignerService
from tests.service.signer.conftest import SignerWorld
from tests.service.signer.test_signer_service import FIRST, _order
from tests.support.gateway import free_port
from tests.unit.signer.helpers import pkilint, serious_findings

REVOKE = Delivery(Queue.SIGNER_REVOKE, 1, False)


async def next_crl(world: SignerWorld, after: int = 0, timeout: float = 10) -> StoredCrl:
    """The newest CRL once its number is above ``after``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        crl = await latest_crl(world.pool, "issuing")
        if crl is not None and crl.number > after:
            return crl
        assert asyncio.get_running_loop().time() < deadline, f"no CRL after number {after}"
        await asyncio.sleep(0.05)


async def issue(world: SignerWorld, signer: SignerService, order_id: str) -> x509.Certificate:
    await signer.on_finalize(_order(order_id, device=f"DEV-{order_id}"), FIRST)
    reply = await world.results.next()
    assert reply.chain_pem is not None, reply.problem
    return x509.load_pem_x509_certificates(reply.chain_pem.encode())[0]


def openssl(*args: str) -> str:
    done = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    return done.stdout + done.stderr


def pki_config(world: SignerWorld) -> Config:
    port = free_port()
    return msgspec.structs.replace(
        world.config, pki=PkiConfig(port=port, base_url=f"http://127.0.0.1:{port}")
    )


async def test_a_revocation_appears_in_the_next_crl_with_its_reason(
    world: SignerWorld, tmp_path: Path
) -> None:
    signer = await world.start_signer()
    first = await next_crl(world)
    assert first.entries == 0
    kept, revoked = await issue(world, signer, "o1"), await issue(world, signer, "o2")

    await signer.on_revoke(
        RevokeCertificates(
            correlation_id="r", reason="keyCompromise", serials=[format(revoked.serial_number, "x")]
        ),
        REVOKE,
    )
    crl_info = await next_crl(world, after=first.number)
    crl = x509.load_der_x509_crl(crl_info.der)

    ca = world.files.certificate
    authority = x509.load_pem_x509_certificate(ca.read_bytes())
    assert crl.is_signature_valid(authority.public_key())
    assert crl.issuer == authority.subject
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == (
        first.number + 1
    )
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = authority.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert crl.next_update_utc == crl.last_update_utc + timedelta(days=7)
    entry = crl.get_revoked_certificate_by_serial_number(revoked.serial_number)
    assert (
        entry is not None
        and crl.get_revoked_certificate_by_serial_number(kept.serial_number) is None
    )
    assert entry.revocation_date_utc == world.clock.now()
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is (
        x509.ReasonFlags.key_compromise
    )

    (tmp_path / "crl.der").write_bytes(crl_info.der)
    text = openssl("crl", "-inform", "DER", "-in", str(tmp_path / "crl.der"), "-noout", "-text")
    assert f"Serial Number: {format(revoked.serial_number, 'X')}" in text
    assert "Key Compromise" in text
    assert f"X509v3 CRL Number: \n                {first.number + 1}" in text
    verified = openssl(
        "crl", "-inform", "DER", "-in", str(tmp_path / "crl.der"), "-noout",
        "-CAfile", str(ca),
    )  # fmt: skip
    assert "verify OK" in verified

    report = pkilint("lint_crl", "-t", "CRL", "-p", "PKIX", str(tmp_path / "crl.der"))
    assert serious_findings(report) == [], report


async def test_a_revocation_recorded_elsewhere_is_published_by_the_periodic_check(
    world: SignerWorld,
) -> None:
    """``acmegate cert revoke`` and other replicas only write the database: the counter that
    every revocation moves tells each publisher the CRL is stale."""
    signer = await world.start_signer()
    first = await next_crl(world)
    certificate = await issue(world, signer, "o1")
    serial = format(certificate.serial_number, "x")
    assert await revoke_certificates(
        world.pool, serials=[serial], reason="superseded", at=world.clock.now()
    ) == [serial]

    published = await signer.crl_publisher.publish_due()
    assert [crl.number for crl in published] == [first.number + 1]
    crl = x509.load_der_x509_crl(published[0].der)
    assert crl.get_revoked_certificate_by_serial_number(certificate.serial_number) is not None
    assert await signer.crl_publisher.publish_due() == []  # nothing new: no new CRL


async def test_the_crl_is_regenerated_on_schedule_with_a_higher_number(
    world: SignerWorld,
) -> None:
    signer = await world.start_signer()
    first = await next_crl(world)
    assert await signer.crl_publisher.publish_due() == []
    world.clock.at += timedelta(minutes=59)
    assert await signer.crl_publisher.publish_due() == []
    world.clock.at += timedelta(minutes=1)  # crl.regenerate_every: 1h
    [second] = await signer.crl_publisher.publish_due()
    assert second.number == first.number + 1
    assert second.this_update == world.clock.now()
    assert second.next_update == world.clock.now() + timedelta(days=7)


async def test_replicas_publish_one_crl_per_change_and_never_reuse_a_number(
    world: SignerWorld,
) -> None:
    replicas = [await world.start_signer(own_pool=True) for _ in range(3)]
    first = await next_crl(world)
    certificate = await issue(world, replicas[0], "o1")
    await revoke_certificates(
        world.pool,
        serials=[format(certificate.serial_number, "x")],
        reason="unspecified",
        at=world.clock.now(),
    )
    results = await asyncio.gather(*(r.crl_publisher.publish_due() for r in replicas))
    published = [crl for result in results for crl in result]
    # The background rounds may have raced these calls; either way one CRL was added.
    rows = await world.pool.fetch("SELECT number FROM pki.crls WHERE ca_name = 'issuing'")
    numbers = sorted(row["number"] for row in rows)
    assert numbers == list(range(1, numbers[-1] + 1))
    assert numbers[-1] == first.number + 1
    assert len(published) <= 1
    crl = x509.load_der_x509_crl((await next_crl(world, after=first.number)).der)
    entry = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
    assert entry is not None
    # reason unspecified: the reasonCode extension is left out (RFC 5280 §5.3.1).
    assert not [e for e in entry.extensions if e.oid == ExtensionOID.CRL_REASON]


def _ocsp_request(
    certificate: x509.Certificate, issuer: x509.Certificate, *, nonce: bytes | None = None
) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


async def _post_ocsp(http: aiohttp.ClientSession, url: str, body: bytes) -> ocsp.OCSPResponse:
    async with http.post(
        url, data=body, headers={"Content-Type": "application/ocsp-request"}
    ) as response:
        assert response.status == 200
        assert response.content_type == "application/ocsp-response"
        return ocsp.load_der_ocsp_response(await response.read())


async def test_the_ocsp_responder_says_good_revoked_and_unknown(world: SignerWorld) -> None:
    config = pki_config(world)
    assert config.pki is not None
    signer = await world.start_signer(config_override=config)
    ca = x509.load_pem_x509_certificate(world.files.certificate.read_bytes())
    certificate = await issue(world, signer, "o1")
    base = config.pki.base_url
    async with aiohttp.ClientSession() as http:
        good = await _post_ocsp(
            http, f"{base}/ocsp/issuing", _ocsp_request(certificate, ca, nonce=b"n" * 16)
        )
        assert good.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
        assert good.certificate_status is ocsp.OCSPCertStatus.GOOD
        assert good.serial_number == certificate.serial_number
        assert good.responder_name == ca.subject
        assert good.this_update_utc == world.clock.now()
        assert good.next_update_utc == world.clock.now() + timedelta(hours=1)
        nonce = good.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        assert nonce == b"n" * 16
        public = ca.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(
            good.signature,
            good.tbs_response_bytes,
            ec.ECDSA(good.signature_hash_algorithm),  # type: ignore[arg-type]
        )

        revoked_at = world.clock.now()
        await signer.on_revoke(
            RevokeCertificates(
                correlation_id="r",
                reason="cessationOfOperation",
                serials=[format(certificate.serial_number, "x")],
            ),
            REVOKE,
        )
        # RFC 6960 Appendix A.1: GET with the URL-encoded base64 request in the path.
        encoded = quote(base64.b64encode(_ocsp_request(certificate, ca)).decode(), safe="")
        async with http.get(f"{base}/ocsp/issuing/{encoded}") as response:
            assert response.status == 200
            revoked = ocsp.load_der_ocsp_response(await response.read())
        assert revoked.certificate_status is ocsp.OCSPCertStatus.REVOKED
        assert revoked.revocation_time_utc == revoked_at
        assert revoked.revocation_reason is x509.ReasonFlags.cessation_of_operation

        # A serial this CA never issued.
        stranger = (
            x509.CertificateBuilder()
            .subject_name(certificate.subject)
            .issuer_name(ca.subject)
            .public_key(certificate.public_key())
            .serial_number(12345)
            .not_valid_before(certificate.not_valid_before_utc)
            .not_valid_after(certificate.not_valid_after_utc)
            .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
        )
        unknown = await _post_ocsp(http, f"{base}/ocsp/issuing", _ocsp_request(stranger, ca))
        assert unknown.certificate_status is ocsp.OCSPCertStatus.UNKNOWN

        # Another issuer, or a CA this signer does not serve: unauthorized (RFC 6960 §2.3).
        other_issuer = await _post_ocsp(
            http, f"{base}/ocsp/issuing", _ocsp_request(certificate, world.root)
        )
        assert other_issuer.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED
        elsewhere = await _post_ocsp(http, f"{base}/ocsp/elsewhere", _ocsp_request(certificate, ca))
        assert elsewhere.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED
        garbage = await _post_ocsp(http, f"{base}/ocsp/issuing", b"\x30\x03junk")
        assert garbage.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


async def test_openssl_ocsp_and_the_crl_and_ca_urls_of_an_issued_certificate(
    world: SignerWorld, tmp_path: Path
) -> None:
    config = pki_config(world)
    assert config.pki is not None
    signer = await world.start_signer(config_override=config)
    certificate = await issue(world, signer, "o1")
    base = config.pki.base_url

    cdp = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    [point] = list(cdp)
    assert point.full_name == [x509.UniformResourceIdentifier(f"{base}/crl/issuing.crl")]
    aia = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert {(d.access_method._name, d.access_location.value) for d in aia} == {
        ("OCSP", f"{base}/ocsp/issuing"),
        ("caIssuers", f"{base}/ca/issuing.cer"),
    }

    async with aiohttp.ClientSession() as http:
        await next_crl(world)
        async with http.get(f"{base}/crl/issuing.crl") as response:
            assert response.status == 200 and response.content_type == "application/pkix-crl"
            x509.load_der_x509_crl(await response.read())
        async with http.get(f"{base}/ca/issuing.cer") as response:
            assert response.status == 200 and response.content_type == "application/pkix-cert"
            served = x509.load_der_x509_certificate(await response.read())
        assert (
            served.public_bytes(serialization.Encoding.PEM) == world.files.certificate.read_bytes()
        )
        for missing in ("/crl/nope.crl", "/ca/nope.cer", "/crl/issuing"):
            async with http.get(base + missing) as response:
                assert response.status == 404

    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))

    def ask() -> str:
        return openssl(
            "ocsp", "-issuer", str(world.files.certificate), "-cert", str(leaf),
            "-url", f"{base}/ocsp/issuing", "-CAfile", str(world.files.chain[0]),
        )  # fmt: skip

    before = await asyncio.to_thread(ask)
    assert f"{leaf}: good" in before and "Response verify OK" in before, before
    await signer.on_revoke(
        RevokeCertificates(
            correlation_id="r",
            reason="keyCompromise",
            serials=[format(certificate.serial_number, "x")],
        ),
        REVOKE,
    )
    after = await asyncio.to_thread(ask)
    assert f"{leaf}: revoked" in after and "Reason: keyCompromise" in after, after
    assert "Response verify OK" in after


@pytest.mark.parametrize("reason", ["keyCompromise", "privilegeWithdrawn"])
async def test_ocsp_responses_pass_pkilint(world: SignerWorld, tmp_path: Path, reason: str) -> None:
    config = pki_config(world)
    assert config.pki is not None
    signer = await world.start_signer(config_override=config)
    ca = x509.load_pem_x509_certificate(world.files.certificate.read_bytes())
    certificate = await issue(world, signer, "o1")
    await signer.on_revoke(
        RevokeCertificates(
            correlation_id="r", reason=reason, serials=[format(certificate.serial_number, "x")]
        ),
        REVOKE,
    )
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{config.pki.base_url}/ocsp/issuing",
            data=_ocsp_request(certificate, ca, nonce=b"0123456789abcdef"),
            headers={"Content-Type": "application/ocsp-request"},
        ) as response:
            (tmp_path / "response.der").write_bytes(await response.read())
    report = pkilint("lint_ocsp_response", str(tmp_path / "response.der"))
    assert serious_findings(report) == [], report
