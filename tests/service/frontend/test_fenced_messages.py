"""The challenge and finalize requests are one statement each: the fence completes the
pipeline message in SQL from the rows it fences (db/work.py). What the attestation stage
receives must be exactly what the request and the stored objects say."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from acmegate.cli.compose import running
from acmegate.common.bus import InProcessBus, Queue, codec
from acmegate.common.config import load_config
from acmegate.common.ids import b64url
from acmegate.common.messages import ChallengeVerified, FinalizeOrder, Identifier, VerifyChallenge
from acmegate.testkit.acme_session import AcmeProblem, AcmeSession
from acmegate.testkit.apple_ca import AttestationCA, LeafClaims
from acmegate.testkit.attobj import attestation_object, challenge_payload, freshness_code
from tests.e2e.test_protocol import csr_der, new_order
from tests.support.gateway import GatewayFiles, gateway_config


@dataclass
class RecordingBus(InProcessBus):
    """Keeps every message published, decoded from the bytes that went on the bus."""

    published: list[tuple[Queue, codec.Message]] = field(default_factory=list)

    async def publish(self, queue: Queue, message: codec.Message | codec.Encoded) -> None:
        body = message.body if isinstance(message, codec.Encoded) else codec.encode(message)
        self.published.append((queue, codec.decode(body)))
        await super().publish(queue, message)

    def on(self, queue: Queue) -> list[codec.Message]:
        return [message for q, message in self.published if q == queue]


@pytest.fixture
def files(tmp_path: Path, attestation_ca: AttestationCA) -> GatewayFiles:
    return gateway_config(tmp_path / "gw", attestation_ca)


def _last(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


async def test_the_fenced_messages_carry_the_request_and_the_stored_objects(
    files: GatewayFiles, attestation_ca: AttestationCA, database_url: str
) -> None:
    bus = RecordingBus()
    names = ["frontend", "attestation", "policy", "signer"]
    async with running(load_config(files.config_path), names, database=database_url, bus=bus):
        async with AcmeSession(files.directory_url) as acme:
            await acme.new_account()
            created = await new_order(acme, "C02E2E00002")
            order, order_url = created.json_object(), created.location
            assert order_url is not None and acme.account_url is not None
            authz_url = order["authorizations"][0]
            challenge = (await acme.post_as_get(authz_url)).json_object()["challenges"][0]
            key = ec.generate_private_key(ec.SECP384R1())
            leaf = attestation_ca.mint_leaf(
                key.public_key(),
                LeafClaims.macos("C02E2E00002"),
                freshness=freshness_code(challenge["token"]),
            )
            payload = challenge_payload(attestation_object(attestation_ca.chain_for(leaf)))
            answered = (await acme.post(challenge["url"], payload)).json_object()
            assert answered["status"] == "valid", answered
            csr = csr_der(key, "C02E2E00002")
            finalized = (await acme.post(order["finalize"], {"csr": b64url(csr)})).json_object()
            assert finalized["status"] == "valid", finalized

    [verify] = bus.on(Queue.CHALLENGE_VERIFY)
    assert isinstance(verify, VerifyChallenge)
    assert json.loads(verify.payload) == payload
    assert verify == VerifyChallenge(
        correlation_id=verify.correlation_id,
        challenge_id=_last(challenge["url"]),
        authz_id=_last(authz_url),
        order_id=_last(order_url),
        account_id=_last(acme.account_url),
        challenge_type=challenge["type"],
        identifier=Identifier(**order["identifiers"][0]),
        token=challenge["token"],
        payload=verify.payload,
        platform=None,
    )
    [verified] = [m for m in bus.on(Queue.FRONTEND_RESULTS) if isinstance(m, ChallengeVerified)]
    assert verified.claims is not None and verified.claims.serial_number == "C02E2E00002"
    [finalize] = bus.on(Queue.FINALIZE_ATTESTATION)
    assert finalize == FinalizeOrder(
        correlation_id=finalize.correlation_id,
        order_id=_last(order_url),
        account_id=_last(acme.account_url),
        identifiers=[Identifier(**i) for i in order["identifiers"]],
        csr_der=csr,
        claims=[verified.claims],
        platform=None,
    )
    assert verify.correlation_id != finalize.correlation_id


async def test_no_fence_is_taken_for_another_account_or_a_replayed_nonce(
    files: GatewayFiles, attestation_ca: AttestationCA, database_url: str
) -> None:
    bus = RecordingBus()
    names = ["frontend", "attestation", "policy", "signer"]
    async with running(load_config(files.config_path), names, database=database_url, bus=bus):
        async with (
            AcmeSession(files.directory_url) as acme,
            AcmeSession(files.directory_url) as other,
        ):
            await acme.new_account()
            await other.new_account()
            order = (await new_order(acme, "C02E2E00002")).json_object()
            authz_url = order["authorizations"][0]
            challenge = (await acme.post_as_get(authz_url)).json_object()["challenges"][0]
            key = ec.generate_private_key(ec.SECP384R1())
            leaf = attestation_ca.mint_leaf(
                key.public_key(),
                LeafClaims.macos("C02E2E00002"),
                freshness=freshness_code(challenge["token"]),
            )
            payload = challenge_payload(attestation_object(attestation_ca.chain_for(leaf)))

            with pytest.raises(AcmeProblem) as caught:
                await other.post(challenge["url"], payload)
            assert (caught.value.status, caught.value.kind) == (403, "unauthorized")
            with pytest.raises(AcmeProblem) as caught:
                await other.post(order["finalize"], {"csr": b64url(csr_der(key, "x"))})
            assert (caught.value.status, caught.value.kind) == (403, "unauthorized")

            nonce = await acme.new_nonce()
            read = await acme.post_raw(authz_url, acme.sign(authz_url, b"", nonce=nonce))
            assert read.status == 200
            replay = await acme.post_raw(
                challenge["url"], acme.sign(challenge["url"], payload, nonce=nonce)
            )
            assert (replay.status, replay.json_object()["type"]) == (
                400,
                "urn:ietf:params:acme:error:badNonce",
            )

            connection = await asyncpg.connect(database_url)
            try:
                state = await connection.fetchval(
                    "SELECT status FROM acme.challenges WHERE id = $1", _last(challenge["url"])
                )
                outbox = await connection.fetchval("SELECT count(*) FROM acme.outbox")
            finally:
                await connection.close()
            assert (state, outbox, bus.published) == ("pending", 0, [])

            # The owner's own answer is still due.
            answered = (await acme.post(challenge["url"], payload)).json_object()
            assert answered["status"] == "valid", answered


async def test_new_account_in_one_statement_keeps_the_order_of_its_checks(
    files: GatewayFiles, database_url: str
) -> None:
    """A replayed nonce creates nothing; an unreadable payload is refused even for a known
    key; what only a new account needs (contact, onlyReturnExisting) is not asked of a key
    that has one."""
    config = load_config(files.config_path)
    async with running(config, ["frontend"], database=database_url, bus=InProcessBus()):
        async with AcmeSession(files.directory_url) as acme:
            url = await acme.url_of("newAccount")
            nonce = await acme.new_nonce()
            first = await acme.post_raw(url, acme.sign(url, {}, nonce=nonce, use_jwk=True))
            assert first.status == 201
            replay = await acme.post_raw(
                url,
                acme.sign(url, {"contact": ["mailto:a@example.com"]}, nonce=nonce, use_jwk=True),
            )
            assert replay.json_object()["type"] == "urn:ietf:params:acme:error:badNonce"
            unreadable = await acme.post_raw(
                url, acme.sign(url, b"[1]", nonce=await acme.new_nonce(), use_jwk=True)
            )
            assert (unreadable.status, unreadable.json_object()["type"]) == (
                400,
                "urn:ietf:params:acme:error:malformed",
            )
            again = await acme.post_raw(
                url,
                acme.sign(
                    url,
                    {"contact": ["tel:+1"], "onlyReturnExisting": "yes"},
                    nonce=await acme.new_nonce(),
                    use_jwk=True,
                ),
            )
            assert (again.status, again.location) == (200, first.location)
        connection = await asyncpg.connect(database_url)
        try:
            accounts = await connection.fetchval("SELECT count(*) FROM acme.accounts")
        finally:
            await connection.close()
        assert accounts == 1
