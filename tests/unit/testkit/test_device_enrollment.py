"""The device, its ACME session and the certbot-`acme` client run the whole flow against a
small strict in-memory ACME server (acme_stub.py), including Apple's quirks and every mode."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp
import pytest
from acme import errors as acme_errors
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from acmegate.testkit.acme_session import AcmeProblem, AcmeSession
from acmegate.testkit.apple_ca import AttestationCA, LeafClaims
from acmegate.testkit.attobj import freshness_code
from acmegate.testkit.csr import build_csr
from acmegate.testkit.device import (
    DEVICE_ATTESTATION,
    DEVICE_CSR,
    DeviceMode,
    SimulatedDevice,
    Stage,
    format_result,
    simulate,
)
from acmegate.testkit.jws import JwsSigner, LeadingZeros, b64url_decode
from tests.support.certbot_client import enroll_with_certbot_acme
from tests.support.device_fixtures import DeviceFactory
from tests.unit.testkit.conftest import StubFactory

SERIAL = "C02XK1ABJGH5"


async def test_genuine_device_enrolls_and_gets_its_chain(
    start_stub: StubFactory,
    make_device: DeviceFactory,
) -> None:
    stub, url = await start_stub()
    device = make_device(url, SERIAL)
    result = await device.enroll()

    assert result.ok, format_result(result)
    assert result.failed_stage is None and result.problem is None
    assert result.certificate is not None and len(result.chain) == 2
    assert result.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == SERIAL
    assert result.certificate.public_key() == device.device_key.public_key()
    for attr in (
        "account_url",
        "order_url",
        "authorization_url",
        "challenge_url",
        "finalize_url",
        "certificate_url",
    ):
        assert getattr(result, attr), attr
    assert result.token and result.attestation is not None and result.csr is not None
    # jwk on newAccount, kid afterwards, always ES256 (docs/apple-attestation.md §10, §12).
    headers = stub.protected_headers
    assert "jwk" in headers[0] and "kid" not in headers[0]
    assert all(h["kid"] == result.account_url and "jwk" not in h for h in headers[1:])
    assert {h["alg"] for h in headers} == {"ES256"}
    report = format_result(result)
    assert f"permanentIdentifier: {SERIAL}" in report and "clientAuth" in report
    assert "-----BEGIN CERTIFICATE-----" in report


async def test_precomputed_keys_and_csr_are_used_and_each_step_is_timed(
    start_stub: StubFactory,
    make_device: DeviceFactory,
) -> None:
    """What a load generator hands in (device key, account key, CSR) is what the server sees;
    the result times every protocol step and the device's own attestation work."""
    stub, url = await start_stub()
    device_key = ec.generate_private_key(ec.SECP384R1())
    account = JwsSigner.generate()
    csr = build_csr(device_key, x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERIAL)]))
    device = make_device(url, SERIAL, device_key=device_key, account=account, csr=csr)
    result = await device.enroll()

    assert result.ok, format_result(result)
    assert result.csr is csr
    assert result.certificate is not None
    assert result.certificate.public_key() == device_key.public_key()
    assert stub.protected_headers[0]["jwk"] == account.jwk
    steps = {stage.value for stage in Stage} | {DEVICE_ATTESTATION, DEVICE_CSR}
    assert set(result.timings) == steps - {Stage.ORDER.value}
    assert all(seconds >= 0 for seconds in result.timings.values())
    # newAccount, newOrder, authorization, challenge, finalize, certificate (+ any polls).
    assert device.session.signed_requests == len(stub.protected_headers) >= 6
    with pytest.raises(ValueError, match="P-384"):
        make_device(url, SERIAL, device_key=ec.generate_private_key(ec.SECP256R1()))


async def test_new_order_names_exactly_the_client_identifier(
    start_stub: StubFactory,
    make_device: DeviceFactory,
) -> None:
    stub, url = await start_stub()
    result = await make_device(
        url, SERIAL, client_identifier=LeafClaims.macos(SERIAL).udid
    ).enroll()
    assert result.ok, format_result(result)
    assert [o.identifier for o in stub.orders.values()] == [LeafClaims.macos(SERIAL).udid]


async def test_bad_nonce_is_retried_once_with_the_nonce_it_carried(
    start_stub: StubFactory,
    make_device: DeviceFactory,
) -> None:
    stub, url = await start_stub(bad_nonces=1)
    result = await make_device(url, SERIAL).enroll()
    assert result.ok, format_result(result)
    assert stub.bad_nonces_sent == 1


async def test_a_second_bad_nonce_in_a_row_ends_the_enrollment(
    start_stub: StubFactory,
    make_device: DeviceFactory,
) -> None:
    _stub, url = await start_stub(bad_nonces=2)
    result = await make_device(url, SERIAL).enroll()
    assert result.failed_stage is Stage.NEW_ACCOUNT
    assert result.problem is not None and result.problem.kind == "badNonce"
    assert result.problem.status == 400
    assert "FAILED at newAccount" in format_result(result)


async def test_polling_honours_retry_after(
    start_stub: StubFactory,
    make_device: DeviceFactory,
) -> None:
    stub, url = await start_stub(challenge_delay=0.3, finalize_delay=0.3, retry_after=1)
    started = time.monotonic()
    result = await make_device(url, SERIAL).enroll()
    assert result.ok, format_result(result)
    # One wait of Retry-After: 1 after the challenge, one after finalize.
    assert time.monotonic() - started >= 2.0
    assert [kind for kind, _ in stub.polls] == ["authz", "authz", "order"]


async def test_apple_short_signatures_are_sent_when_asked(
    start_stub: StubFactory,
    make_device: DeviceFactory,
) -> None:
    stub, url = await start_stub()
    result = await make_device(url, SERIAL, strip_leading_zeros=LeadingZeros.FORCE_ANY).enroll()
    assert result.ok, format_result(result)
    assert stub.short_signatures == len(stub.protected_headers)


@pytest.mark.parametrize(
    ("mode", "stage", "kind", "detail"),
    [
        (
            DeviceMode.WRONG_TOKEN_HASH,
            Stage.CHALLENGE,
            "badAttestationStatement",
            "token does not match",
        ),
        (
            DeviceMode.STALE_ATTESTATION,
            Stage.CHALLENGE,
            "badAttestationStatement",
            "token does not match",
        ),
        (DeviceMode.MISSING_FRESHNESS, Stage.CHALLENGE, "badAttestationStatement", "freshness"),
        (DeviceMode.WRONG_ROOT, Stage.CHALLENGE, "badAttestationStatement", "x5c is not valid"),
        (DeviceMode.IDENTIFIER_MISMATCH, Stage.CHALLENGE, "badAttestationStatement", "identifier"),
        (DeviceMode.EMPTY_ATT_STMT, Stage.CHALLENGE, "badAttestationStatement", "x5c not present"),
        (
            DeviceMode.ERROR_PAYLOAD,
            Stage.CHALLENGE,
            "rejectedIdentifier",
            "payload contained error",
        ),
        (DeviceMode.CSR_KEY_MISMATCH, Stage.FINALIZE, "badCSR", "attested key"),
    ],
)
async def test_each_negative_mode_is_refused_where_expected(
    start_stub: StubFactory,
    make_device: DeviceFactory,
    mode: DeviceMode,
    stage: Stage,
    kind: str,
    detail: str,
) -> None:
    _stub, url = await start_stub()
    result = await make_device(url, SERIAL, mode=mode).enroll()
    assert not result.ok
    assert result.failed_stage is stage, format_result(result)
    assert result.problem is not None and result.problem.kind == kind
    assert detail in result.problem.detail
    if mode is DeviceMode.IDENTIFIER_MISMATCH:
        assert result.problem.subproblem_kinds == ["rejectedIdentifier"]
        assert [p.kind for p in result.problems] == [
            "badAttestationStatement",
            "rejectedIdentifier",
        ]
    if stage is Stage.CHALLENGE:
        assert result.challenge is not None and result.challenge["status"] == "invalid"


async def test_stale_mode_takes_its_token_from_a_throwaway_order(
    start_stub: StubFactory,
    make_device: DeviceFactory,
) -> None:
    stub, url = await start_stub()
    result = await make_device(url, SERIAL, mode=DeviceMode.STALE_ATTESTATION).enroll()
    assert len(stub.orders) == 2
    first_token = next(a.token for a in stub.authzs.values() if a.order.status == "pending")
    assert result.token is not None and result.token != first_token
    assert result.attestation is not None
    assert result.attestation.freshness == freshness_code(first_token)


async def test_reusing_the_previous_attestation_fails_the_second_enrollment(
    start_stub: StubFactory,
    make_device: DeviceFactory,
) -> None:
    _stub, url = await start_stub()
    device = make_device(url, SERIAL, mode=DeviceMode.REUSE_PREVIOUS_ATTESTATION)
    first = await device.enroll()
    second = await device.enroll()
    assert first.ok, format_result(first)
    assert second.failed_stage is Stage.CHALLENGE
    assert second.problem is not None and second.problem.kind == "badAttestationStatement"
    assert first.account_url == second.account_url  # newAccount found the existing account
    assert second.attestation == first.attestation


async def test_session_escape_hatches_send_broken_requests(
    start_stub: StubFactory,
    attestation_ca: AttestationCA,
) -> None:
    _stub, url = await start_stub()
    async with AcmeSession(url) as session:
        await session.new_account()
        new_order = await session.url_of("newOrder")

        wrong_type = await session.post_raw(new_order, b"{}", content_type="application/json")
        problem = wrong_type.problem()
        assert problem is not None and (problem.status, problem.kind) == (415, "malformed")

        no_nonce = session.sign(new_order, {"identifiers": []}, nonce=None)
        assert "nonce" not in json.loads(b64url_decode(no_nonce["protected"]))
        problem = (await session.post_raw(new_order, no_nonce)).problem()
        assert problem is not None and problem.kind == "badNonce"

        elsewhere = session.sign(
            new_order, {}, nonce=await session.take_nonce(), protected={"url": "https://evil.test/"}
        )
        problem = (await session.post_raw(new_order, elsewhere)).problem()
        assert problem is not None and problem.kind == "unauthorized"

        with pytest.raises(AcmeProblem) as raised:
            await session.post(new_order, {"identifiers": [{"type": "dns", "value": "x"}]})
        assert raised.value.kind == "unsupportedIdentifier"
        assert session.pooled_nonces >= 1  # every response fed the pool


async def test_simulate_loads_the_ca_directory_and_reports(
    start_stub: StubFactory,
    attestation_ca: AttestationCA,
    tmp_path: Path,
) -> None:
    _stub, url = await start_stub()
    attestation_ca.save(tmp_path)
    ok = await simulate(url, serial=SERIAL, attestation_ca_dir=tmp_path, os="ios")
    assert ok.ok, format_result(ok)
    bad = await simulate(
        url, serial=SERIAL, attestation_ca_dir=tmp_path, mode=DeviceMode.WRONG_ROOT
    )
    report = format_result(bad)
    assert "FAILED at challenge" in report
    assert "urn:ietf:params:acme:error:badAttestationStatement" in report


async def test_certbot_acme_client_enrolls(
    start_stub: StubFactory,
    attestation_ca: AttestationCA,
) -> None:
    stub, url = await start_stub()
    pem = await asyncio.to_thread(enroll_with_certbot_acme, url, SERIAL, attestation_ca, timeout=10)
    chain = x509.load_pem_x509_certificates(pem.encode())
    assert len(chain) == 2
    assert chain[0].subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == SERIAL
    assert {h["alg"] for h in stub.protected_headers} == {"ES256"}


async def test_certbot_acme_client_surfaces_a_failed_attestation(
    start_stub: StubFactory,
    attestation_ca: AttestationCA,
) -> None:
    _stub, url = await start_stub()
    with pytest.raises(acme_errors.ValidationError) as raised:
        await asyncio.to_thread(
            enroll_with_certbot_acme,
            url,
            SERIAL,
            attestation_ca,
            claims=LeafClaims.macos("SOMEONEELSE1"),
            timeout=10,
        )
    challb = raised.value.failed_authzrs[0].body.challenges[0]
    assert challb.error is not None
    assert challb.error.typ.endswith("badAttestationStatement")


async def test_shared_http_session_is_left_open_for_other_devices(
    start_stub: StubFactory,
    attestation_ca: AttestationCA,
) -> None:
    _stub, url = await start_stub()
    async with aiohttp.ClientSession() as http:
        device = SimulatedDevice(
            url, SERIAL, LeafClaims.macos(SERIAL), attestation_ca, session=http
        )
        assert (await device.enroll()).ok
        await device.close()
        assert not http.closed
