"""RFC 8555 at the edge: headers, JWS and nonce checks, account isolation, and the problem
document each bad request gets (never a 500, never a traceback)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from acmegate.common.ids import b64url
from acmegate.testkit.acme_session import AcmeProblem, AcmeResponse, AcmeSession
from acmegate.testkit.apple_ca import AttestationCA, LeafClaims
from acmegate.testkit.attobj import attestation_object, challenge_payload, freshness_code
from acmegate.testkit.device import SimulatedDevice
from acmegate.testkit.jws import Algorithm, JwsSigner
from tests.support.gateway import Gateway, gateway_config, running_gateway

pytestmark = pytest.mark.e2e

PROBLEM = "application/problem+json"


@pytest.fixture
async def session(gateway: Gateway) -> AsyncIterator[AcmeSession]:
    async with AcmeSession(gateway.directory_url) as acme:
        await acme.new_account()
        yield acme


async def problem_of(response: AcmeResponse) -> AcmeProblem:
    assert response.content_type == PROBLEM, (response.status, response.text)
    assert response.nonce, "every error carries a fresh Replay-Nonce (RFC 8555 §6.5)"
    problem = response.problem()
    assert problem is not None
    assert "Traceback" not in response.text
    return problem


async def new_order(acme: AcmeSession, value: str = "C02E2E00001") -> AcmeResponse:
    return await acme.post(
        await acme.url_of("newOrder"),
        {"identifiers": [{"type": "permanent-identifier", "value": value}]},
    )


async def ready_order(
    acme: AcmeSession, attestation_ca: AttestationCA, serial: str = "C02E2E00001"
) -> tuple[dict[str, Any], str, ec.EllipticCurvePrivateKey]:
    """An order whose device-attest-01 challenge was answered correctly: (order, url, key)."""
    created = await new_order(acme, serial)
    order, order_url = created.json_object(), created.location
    assert order_url is not None
    authz = (await acme.post_as_get(order["authorizations"][0])).json_object()
    challenge = authz["challenges"][0]
    key = ec.generate_private_key(ec.SECP384R1())
    leaf = attestation_ca.mint_leaf(
        key.public_key(), LeafClaims.macos(serial), freshness=freshness_code(challenge["token"])
    )
    payload = challenge_payload(attestation_object(attestation_ca.chain_for(leaf)))
    answered = (await acme.post(challenge["url"], payload)).json_object()
    assert answered["status"] == "valid", answered
    order = (await acme.post_as_get(order_url)).json_object()
    assert order["status"] == "ready"
    return order, order_url, key


def csr_der(key: ec.EllipticCurvePrivateKey, common_name: str) -> bytes:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .sign(key, hashes.SHA384())
    )
    return csr.public_bytes(serialization.Encoding.DER)


# --- directory and nonces -------------------------------------------------------------------


async def test_the_directory_lists_every_resource(gateway: Gateway) -> None:
    async with AcmeSession(gateway.directory_url) as acme:
        response = await acme.request("GET", gateway.directory_url)
    directory = response.json_object()
    for name in ("newNonce", "newAccount", "newOrder", "keyChange"):
        assert directory[name].startswith("http://127.0.0.1:")
    assert response.nonce
    assert f'<{gateway.directory_url}>;rel="index"' in response.headers.getall("Link")


async def test_new_nonce_answers_head_and_get_without_caching(gateway: Gateway) -> None:
    async with AcmeSession(gateway.directory_url) as acme:
        url = await acme.url_of("newNonce")
        head = await acme.request("HEAD", url)
        get = await acme.request("GET", url)
    assert (head.status, get.status) == (200, 204)
    assert head.nonce and get.nonce and head.nonce != get.nonce
    assert head.headers["Cache-Control"] == "no-store"


async def test_a_replayed_nonce_is_a_bad_nonce_with_a_fresh_one(
    session: AcmeSession,
) -> None:
    url = await session.url_of("newOrder")
    nonce = await session.new_nonce()
    body = session.sign(
        url, {"identifiers": [{"type": "permanent-identifier", "value": "X1"}]}, nonce=nonce
    )
    first = await session.post_raw(url, body)
    assert first.status == 201
    replay = await session.post_raw(url, body)
    problem = await problem_of(replay)
    assert (replay.status, problem.kind) == (400, "badNonce")
    assert replay.nonce != nonce


async def test_a_forged_nonce_is_a_bad_nonce(session: AcmeSession) -> None:
    url = await session.url_of("newOrder")
    body = session.sign(url, {"identifiers": []}, nonce=b64url(b"\x01" * 24))
    assert (await problem_of(await session.post_raw(url, body))).kind == "badNonce"


# --- JWS ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"{not json", "malformed"),
        (b'{"protected":"e30","payload":"","signature":""}', "badSignatureAlgorithm"),
        (b'{"protected":"!!","payload":"","signature":""}', "malformed"),
    ],
    ids=["not-json", "no-alg", "bad-base64"],
)
async def test_malformed_jws_bodies_get_problem_documents(
    session: AcmeSession, body: bytes, kind: str
) -> None:
    response = await session.post_raw(await session.url_of("newOrder"), body)
    assert response.status == 400
    assert (await problem_of(response)).kind == kind


async def test_a_tampered_signature_is_refused(session: AcmeSession) -> None:
    url = await session.url_of("newOrder")
    body = session.sign(url, {"identifiers": []}, nonce=await session.take_nonce())
    body["payload"] = b64url(b'{"identifiers":[{"type":"permanent-identifier","value":"X"}]}')
    response = await session.post_raw(url, body)
    # Signed for an account, it does not verify with the account's key: not its holder.
    assert (response.status, (await problem_of(response)).kind) == (403, "unauthorized")
    url = await session.url_of("newAccount")
    body = session.sign(url, {}, nonce=await session.take_nonce(), use_jwk=True)
    body["payload"] = b64url(b'{"termsOfServiceAgreed":true}')
    response = await session.post_raw(url, body)
    assert (response.status, (await problem_of(response)).kind) == (400, "malformed")


async def test_the_signed_url_must_be_the_request_url(session: AcmeSession) -> None:
    url = await session.url_of("newOrder")
    body = session.sign(url + "x", {"identifiers": []}, nonce=await session.take_nonce())
    response = await session.post_raw(url, body)
    assert (response.status, (await problem_of(response)).kind) == (403, "unauthorized")


async def test_jose_content_type_is_required(session: AcmeSession) -> None:
    url = await session.url_of("newOrder")
    body = session.sign(url, {"identifiers": []}, nonce=await session.take_nonce())
    response = await session.post_raw(url, body, content_type="application/json")
    assert response.status == 415
    assert (await problem_of(response)).kind == "malformed"


async def test_an_oversized_body_is_refused_with_a_problem(session: AcmeSession) -> None:
    url = await session.url_of("newOrder")
    response = await session.post_raw(url, b"{" + b" " * 200_000 + b"}")
    assert response.status == 413
    assert (await problem_of(response)).kind == "malformed"


async def test_a_kid_for_an_unknown_account_is_account_does_not_exist(
    gateway: Gateway, session: AcmeSession
) -> None:
    url = await session.url_of("newOrder")
    kid = gateway.directory_url.replace("/directory", "/acct/nope")
    body = session.sign(
        url, {"identifiers": []}, nonce=await session.take_nonce(), protected={"kid": kid}
    )
    assert (await problem_of(await session.post_raw(url, body))).kind == "accountDoesNotExist"


async def test_jwk_is_only_accepted_on_new_account(session: AcmeSession) -> None:
    url = await session.url_of("newOrder")
    body = session.sign(url, {"identifiers": []}, nonce=await session.take_nonce(), use_jwk=True)
    assert (await problem_of(await session.post_raw(url, body))).kind == "malformed"


async def test_plain_get_on_a_resource_is_method_not_allowed(session: AcmeSession) -> None:
    order_url = (await new_order(session)).location
    assert order_url is not None
    response = await session.request("GET", order_url)
    assert response.status == 405
    assert (await problem_of(response)).kind == "malformed"


async def test_an_unknown_path_is_a_404_problem(gateway: Gateway) -> None:
    async with AcmeSession(gateway.directory_url) as acme:
        response = await acme.request("GET", gateway.directory_url.replace("directory", "nope"))
    assert response.status == 404
    await problem_of(response)


# --- accounts -------------------------------------------------------------------------------


async def test_new_account_is_idempotent_per_key(gateway: Gateway) -> None:
    async with AcmeSession(gateway.directory_url) as acme:
        first = await acme.new_account(
            {"termsOfServiceAgreed": True, "contact": ["mailto:it@example.com"]}
        )
        again = await acme.new_account()
    assert (first.status, again.status) == (201, 200)
    assert first.location == again.location
    assert first.json_object()["contact"] == ["mailto:it@example.com"]


async def test_only_return_existing_for_an_unknown_key(gateway: Gateway) -> None:
    async with AcmeSession(gateway.directory_url) as acme:
        with pytest.raises(AcmeProblem) as caught:
            await acme.new_account({"onlyReturnExisting": True})
    assert caught.value.kind == "accountDoesNotExist"


async def test_an_unsupported_contact_is_refused(gateway: Gateway) -> None:
    async with AcmeSession(gateway.directory_url) as acme:
        with pytest.raises(AcmeProblem) as caught:
            await acme.new_account({"contact": ["tel:+15555550100"]})
    assert caught.value.kind == "unsupportedContact"


async def test_a_deactivated_account_can_do_nothing_more(session: AcmeSession) -> None:
    assert session.account_url is not None
    done = await session.post(session.account_url, {"status": "deactivated"})
    assert done.json_object()["status"] == "deactivated"
    with pytest.raises(AcmeProblem) as caught:
        await new_order(session)
    assert (caught.value.status, caught.value.kind) == (403, "unauthorized")


async def test_new_account_with_a_deactivated_accounts_key_is_unauthorized(
    session: AcmeSession,
) -> None:
    """RFC 8555 §7.3.6: the server must not accept a deactivated account's key again."""
    assert session.account_url is not None
    await session.post(session.account_url, {"status": "deactivated"})
    for payload in ({}, {"onlyReturnExisting": True}):
        with pytest.raises(AcmeProblem) as caught:
            await session.post(await session.url_of("newAccount"), payload, use_jwk=True)
        assert (caught.value.status, caught.value.kind) == (403, "unauthorized")
        assert caught.value.detail == "the account of this key is deactivated"


@pytest.mark.parametrize("new_alg", [Algorithm.ES256, Algorithm.ES384])
async def test_key_change_moves_the_account_to_the_new_key(
    gateway: Gateway, session: AcmeSession, new_alg: Algorithm
) -> None:
    url = await session.url_of("keyChange")
    new_signer = JwsSigner.generate(new_alg)
    inner = new_signer.sign(
        {"alg": str(new_alg), "jwk": new_signer.jwk, "url": url},
        {"account": session.account_url, "oldKey": session.signer.jwk},
    )
    await session.post(url, inner)
    old_key = session.signer
    session.signer = new_signer
    assert (await new_order(session)).status == 201
    # The old key signs for nobody now, whatever its algorithm: the client is told why.
    session.signer = old_key
    with pytest.raises(AcmeProblem) as caught:
        await new_order(session)
    assert (caught.value.status, caught.value.kind) == (403, "unauthorized")
    assert caught.value.detail == (
        "the JWS is not signed with this account's current key (was it replaced by keyChange?)"
    )


# --- orders ---------------------------------------------------------------------------------


async def test_an_order_has_one_device_attest_challenge(session: AcmeSession) -> None:
    created = await new_order(session)
    order = created.json_object()
    assert created.status == 201 and created.location
    assert order["status"] == "pending"
    authz = (await session.post_as_get(order["authorizations"][0])).json_object()
    assert authz["identifier"] == {"type": "permanent-identifier", "value": "C02E2E00001"}
    [challenge] = authz["challenges"]
    assert challenge["type"] == "device-attest-01"
    assert len(challenge["token"]) >= 22 and "=" not in challenge["token"]


@pytest.mark.parametrize(
    ("identifiers", "kind"),
    [
        ([{"type": "dns", "value": "example.com"}], "unsupportedIdentifier"),
        ([{"type": "permanent-identifier", "value": "ABC/not-an-oid"}], "malformed"),
        (
            [
                {"type": "permanent-identifier", "value": "A"},
                {"type": "permanent-identifier", "value": "B"},
            ],
            "malformed",
        ),
        ([], "malformed"),
    ],
    ids=["dns", "bad-assigner", "two-devices", "none"],
)
async def test_bad_identifiers_are_refused(
    session: AcmeSession, identifiers: list[dict[str, str]], kind: str
) -> None:
    with pytest.raises(AcmeProblem) as caught:
        await session.post(await session.url_of("newOrder"), {"identifiers": identifiers})
    assert caught.value.kind == kind


async def test_not_after_is_refused(session: AcmeSession) -> None:
    with pytest.raises(AcmeProblem) as caught:
        await session.post(
            await session.url_of("newOrder"),
            {
                "identifiers": [{"type": "permanent-identifier", "value": "C02E2E00001"}],
                "notAfter": "2030-01-01T00:00:00Z",
            },
        )
    assert caught.value.kind == "malformed"


async def test_finalize_before_the_challenge_is_order_not_ready(session: AcmeSession) -> None:
    order = (await new_order(session)).json_object()
    key = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(AcmeProblem) as caught:
        await session.post(order["finalize"], {"csr": b64url(csr_der(key, "C02E2E00001"))})
    assert (caught.value.status, caught.value.kind) == (403, "orderNotReady")


async def test_a_csr_that_does_not_parse_leaves_the_order_ready(
    session: AcmeSession, attestation_ca: AttestationCA
) -> None:
    order, order_url, _ = await ready_order(session, attestation_ca)
    with pytest.raises(AcmeProblem) as caught:
        await session.post(order["finalize"], {"csr": b64url(b"\x30\x03\x02\x01\x00")})
    assert caught.value.kind == "badCSR"
    assert (await session.post_as_get(order_url)).json_object()["status"] == "ready"


async def test_finalize_twice_signs_once(
    gateway: Gateway, session: AcmeSession, attestation_ca: AttestationCA
) -> None:
    order, _, key = await ready_order(session, attestation_ca)
    csr = {"csr": b64url(csr_der(key, "C02E2E00001"))}
    done = (await session.post(order["finalize"], csr)).json_object()
    assert done["status"] == "valid"
    with pytest.raises(AcmeProblem) as caught:
        await session.post(order["finalize"], csr)
    assert caught.value.kind == "orderNotReady"
    chain = await session.post_as_get(done["certificate"])
    assert chain.content_type == "application/pem-certificate-chain"
    assert chain.text.count("BEGIN CERTIFICATE") == 2
    assert await gateway.pool.fetchval("SELECT count(*) FROM pki.certificates") == 1


async def test_a_csr_naming_another_device_is_a_bad_csr(
    session: AcmeSession, attestation_ca: AttestationCA
) -> None:
    order, _, key = await ready_order(session, attestation_ca)
    with pytest.raises(AcmeProblem) as caught:
        await session.post(order["finalize"], {"csr": b64url(csr_der(key, "C02SOMEONEELSE"))})
    assert caught.value.kind == "badCSR"


async def test_a_garbage_attestation_invalidates_the_challenge_but_answers_200(
    session: AcmeSession,
) -> None:
    order = (await new_order(session)).json_object()
    authz = (await session.post_as_get(order["authorizations"][0])).json_object()
    challenge = authz["challenges"][0]
    response = await session.post(challenge["url"], {"attObj": b64url(b"\xff\x00garbage")})
    answered = response.json_object()
    assert response.status == 200
    assert answered["status"] == "invalid"
    assert answered["error"]["type"] == "urn:ietf:params:acme:error:badAttestationStatement"
    assert f'<{order["authorizations"][0]}>;rel="up"' in response.headers.getall("Link")
    # RFC 8555 §7.1.6: the authorization and the order are invalid too.
    assert (await session.post_as_get(order["authorizations"][0])).json_object()[
        "status"
    ] == "invalid"


async def test_an_empty_answer_leaves_the_challenge_pending(session: AcmeSession) -> None:
    order = (await new_order(session)).json_object()
    authz = (await session.post_as_get(order["authorizations"][0])).json_object()
    with pytest.raises(AcmeProblem) as caught:
        await session.post(authz["challenges"][0]["url"], {})
    assert caught.value.kind == "malformed"
    after = (await session.post_as_get(order["authorizations"][0])).json_object()
    assert after["challenges"][0]["status"] == "pending"


# --- isolation between accounts -------------------------------------------------------------


async def test_another_account_cannot_see_or_touch_my_objects(
    gateway: Gateway, attestation_ca: AttestationCA
) -> None:
    device = SimulatedDevice(
        gateway.directory_url, "C02E2E00001", LeafClaims.macos("C02E2E00001"), attestation_ca
    )
    try:
        mine = await device.enroll()
    finally:
        await device.close()
    assert mine.ok
    urls = [
        mine.order_url,
        mine.authorization_url,
        mine.challenge_url,
        mine.certificate_url,
        mine.account_url + "/orders",
    ]
    async with AcmeSession(gateway.directory_url) as other:
        await other.new_account()
        for url in urls:
            assert url is not None
            with pytest.raises(AcmeProblem) as caught:
                await other.post_as_get(url)
            assert (caught.value.status, caught.value.kind) == (403, "unauthorized"), url
        with pytest.raises(AcmeProblem) as caught:
            await other.post(mine.account_url, {"status": "deactivated"})
        assert caught.value.kind == "unauthorized"


async def test_an_order_and_the_orders_list_are_read_only_with_post_as_get(
    session: AcmeSession,
) -> None:
    """RFC 8555 §6.3: POST-as-GET has an empty payload; a JSON payload (even ``{}``) on a
    resource that has no update is malformed, not a read."""
    order_url = (await new_order(session)).location
    assert order_url is not None and session.account_url is not None
    for url in (order_url, session.account_url + "/orders"):
        for payload in ({}, {"status": "valid"}):
            body = session.sign(url, payload, nonce=await session.take_nonce())
            response = await session.post_raw(url, body)
            assert (response.status, (await problem_of(response)).kind) == (400, "malformed")
        assert (await session.post_as_get(url)).status == 200


async def test_another_accounts_kid_or_spent_nonce_gets_nothing(
    gateway: Gateway, session: AcmeSession
) -> None:
    """My key under another account's ``kid`` is not that account; a nonce another account
    spent is spent for everyone (RFC 8555 §6.5: nonces are not per account)."""
    url = await session.url_of("newOrder")
    payload = {"identifiers": [{"type": "permanent-identifier", "value": "C02E2E00001"}]}
    async with AcmeSession(gateway.directory_url) as other:
        await other.new_account()
        assert other.account_url is not None
        body = session.sign(
            url, payload, nonce=await session.take_nonce(), protected={"kid": other.account_url}
        )
        response = await session.post_raw(url, body)
        assert (response.status, (await problem_of(response)).kind) == (403, "unauthorized")
        nonce = await session.take_nonce()
        assert (await session.post_raw(url, session.sign(url, payload, nonce=nonce))).status == 201
        replayed = await other.post_raw(url, other.sign(url, payload, nonce=nonce))
        assert (replayed.status, (await problem_of(replayed)).kind) == (400, "badNonce")
        listed = (await other.post_as_get(other.account_url + "/orders")).json_object()
        assert listed["orders"] == []


async def test_my_orders_list_holds_my_orders_only(gateway: Gateway, session: AcmeSession) -> None:
    mine = (await new_order(session)).location
    async with AcmeSession(gateway.directory_url) as other:
        await other.new_account()
        await new_order(other, "C02E2E00002")
    assert session.account_url is not None
    listed = (await session.post_as_get(session.account_url + "/orders")).json_object()
    assert listed["orders"] == [mine]


async def test_nothing_answers_a_traceback_even_for_a_binary_body(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            gateway.directory_url.replace("directory", "new-account"),
            data=bytes(range(256)) * 4,
            headers={"Content-Type": "application/jose+json"},
        ) as response:
            text = await response.text()
            assert response.status == 400
            assert response.content_type == PROBLEM
            assert json.loads(text)["type"] == "urn:ietf:params:acme:error:malformed"
            assert response.headers["Replay-Nonce"]


async def test_a_replayed_nonce_on_a_read_is_a_bad_nonce(session: AcmeSession) -> None:
    authz_url = (await new_order(session)).json_object()["authorizations"][0]
    nonce = await session.new_nonce()
    body = session.sign(authz_url, b"", nonce=nonce)
    assert (await session.post_raw(authz_url, body)).status == 200
    replay = await session.post_raw(authz_url, body)
    assert (replay.status, (await problem_of(replay)).kind) == (400, "badNonce")


async def test_an_account_deactivated_by_another_replica_is_refused_at_once(
    gateway: Gateway, session: AcmeSession
) -> None:
    """This replica has the account's key cached; the database still decides."""
    authz_url = (await new_order(session)).json_object()["authorizations"][0]
    await session.post_as_get(authz_url)  # the account is known to this replica now
    assert session.account_url is not None
    account_id = session.account_url.rsplit("/", 1)[1]
    await gateway.pool.execute(
        "UPDATE acme.accounts SET status = 'deactivated' WHERE id = $1", account_id
    )
    for attempt in (lambda: session.post_as_get(authz_url), lambda: new_order(session)):
        with pytest.raises(AcmeProblem) as caught:
            await attempt()
        assert (caught.value.status, caught.value.kind) == (403, "unauthorized")
    orders = await gateway.pool.fetchval(
        "SELECT count(*) FROM acme.orders WHERE account_id = $1", account_id
    )
    assert orders == 1


async def test_a_key_changed_by_another_replica_is_honoured_at_once(
    gateway: Gateway, session: AcmeSession
) -> None:
    await new_order(session)  # the old key is cached here
    assert session.account_url is not None
    new_signer = JwsSigner.generate()
    from acmegate.frontend.jws import thumbprint

    await gateway.pool.execute(
        "UPDATE acme.accounts SET jwk = $2, thumbprint = $3 WHERE id = $1",
        session.account_url.rsplit("/", 1)[1],
        new_signer.jwk,
        thumbprint(new_signer.jwk),
    )
    with pytest.raises(AcmeProblem) as caught:
        await new_order(session)
    assert caught.value.kind == "unauthorized"
    session.signer = new_signer
    assert (await new_order(session)).status == 201


async def test_the_orders_list_pages_through_link_next(
    tmp_path: Path, attestation_ca: AttestationCA, database_url: str
) -> None:
    # More orders than a page from one account: its new-orders limit is off here.
    files = gateway_config(
        tmp_path / "gw",
        attestation_ca,
        overrides={"rate_limits": {"new_orders_per_account": None}},
    )
    async with running_gateway(files, database_url), AcmeSession(files.directory_url) as session:
        await session.new_account()
        made = {(await new_order(session, f"C02PAGE{i:04d}")).location for i in range(105)}
        assert session.account_url is not None
        first = await session.post_as_get(session.account_url + "/orders")
        [next_url] = first.links("next")
        second = await session.post_as_get(next_url)
    listed = first.json_object()["orders"] + second.json_object()["orders"]
    assert len(first.json_object()["orders"]) == 100
    assert set(listed) == made and len(listed) == len(made)
    assert second.links("next") == []


async def test_a_bad_orders_cursor_is_malformed_not_a_500(session: AcmeSession) -> None:
    assert session.account_url is not None
    with pytest.raises(AcmeProblem) as caught:
        await session.post_as_get(session.account_url + "/orders?before=yesterday")
    assert (caught.value.status, caught.value.kind) == (400, "malformed")


ODD_PAYLOADS = [
    b"[]",
    b"null",
    b"1",
    b'"text"',
    b'{"identifiers": {}}',
    b'{"identifiers": [{"type": 1, "value": []}]}',
    b'{"csr": [1]}',
    b'{"csr": "!!"}',
    b'{"status": 5, "contact": "mailto:x"}',
    b'{"attObj": 7}',
    b'{"error": {"nested": true}}',
    b'{"account": 1, "oldKey": {"kty": "EC"}}',
    b'{"certificate": 5, "reason": "x"}',
]


async def test_odd_payloads_get_problem_documents_never_a_server_error(
    session: AcmeSession, attestation_ca: AttestationCA
) -> None:
    order, order_url, _ = await ready_order(session, attestation_ca)
    pending = (await new_order(session, "C02E2E00002")).json_object()
    authz_url = pending["authorizations"][0]
    challenge_url = (await session.post_as_get(authz_url)).json_object()["challenges"][0]["url"]
    assert session.account_url is not None
    urls = [
        await session.url_of("newOrder"),
        await session.url_of("keyChange"),
        await session.url_of("revokeCert"),
        session.account_url,
        order["finalize"],
        order_url,
        authz_url,
        challenge_url,
    ]
    for url in urls:
        for payload in ODD_PAYLOADS:
            body = session.sign(url, payload, nonce=await session.take_nonce())
            response = await session.post_raw(url, body)
            assert response.status < 500, (url, payload, response.status, response.text)
            assert "Traceback" not in response.text
