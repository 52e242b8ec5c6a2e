"""The attestation service on the in-process bus: what the frontend and policy stage receive."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from acmegate.attestation import AttestationService
from acmegate.common.bus import Delivery, InProcessBus, Queue
from acmegate.common.bus.codec import Message
from acmegate.common.clock import FixedClock
from acmegate.common.config import Config
from acmegate.common.config.model import AttestationProviderConfig, BusConfig
from acmegate.common.messages import (
    ChallengeVerified,
    DeviceClaims,
    FinalizeOrder,
    Identifier,
    OrderFinalized,
    VerifyChallenge,
    WorkDone,
)
from acmegate.common.runtime import Runtime
from acmegate.common.x509names import spki_der
from acmegate.testkit.apple_ca import AttestationCA, LeafClaims
from acmegate.testkit.attobj import attestation_object, challenge_payload, freshness_code

MINTED = datetime(2026, 3, 2, 9, 59, tzinfo=UTC)
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
TOKEN = "Yq3n7lJ0b4pWcX9sTgE2vA8mKdZrHfUiOyN1QxL6BjM"
SERIAL = "C02SERVICE01"


class Harness:
    """A running service with a recorder on the queues it publishes to."""

    def __init__(self, bus: InProcessBus, service: AttestationService) -> None:
        self.bus = bus
        self.service = service
        self.received: dict[Queue, asyncio.Queue[Message]] = {
            Queue.FRONTEND_RESULTS: asyncio.Queue(),
            Queue.FINALIZE_POLICY: asyncio.Queue(),
        }

    async def record(self) -> None:
        for queue, sink in self.received.items():

            async def handler(
                message: Message, _: Delivery, sink: asyncio.Queue[Message] = sink
            ) -> None:
                await sink.put(message)

            await self.bus.consume(queue, handler, prefetch=4)

    async def next(self, queue: Queue) -> Message:
        return await asyncio.wait_for(self.received[queue].get(), 5)


@pytest.fixture
def ca() -> AttestationCA:
    return AttestationCA.generate(now=datetime(2026, 1, 1, tzinfo=UTC))


@pytest.fixture
async def harness(ca: AttestationCA, tmp_path: Path) -> AsyncIterator[Harness]:
    root = tmp_path / "simulator-root.pem"
    root.write_bytes(ca.root.public_bytes(serialization.Encoding.PEM))
    config = Config(
        bus=BusConfig(prefetch=4),
        attestation_providers=[AttestationProviderConfig(name="simulator", roots=[str(root)])],
    )
    bus = InProcessBus()
    await bus.start()
    # The attestation service keeps no state: no database pool.
    service = AttestationService(Runtime(config=config, bus=bus, clock=FixedClock(NOW)))
    await service.start()
    harness = Harness(bus, service)
    await harness.record()
    try:
        yield harness
    finally:
        await service.stop()
        await bus.close()


def verify_challenge(
    ca: AttestationCA, key: ec.EllipticCurvePrivateKey, *, token: str = TOKEN
) -> VerifyChallenge:
    leaf = ca.mint_leaf(
        key.public_key(), LeafClaims.macos(SERIAL), freshness=freshness_code(token), now=MINTED
    )
    payload = json.dumps(challenge_payload(attestation_object(ca.chain_for(leaf)))).encode()
    return VerifyChallenge(
        correlation_id="corr-42",
        challenge_id="chall-42",
        authz_id="authz-42",
        order_id="order-42",
        account_id="acct-42",
        challenge_type="device-attest-01",
        identifier=Identifier(type="permanent-identifier", value=SERIAL),
        token=TOKEN,
        payload=payload,
    )


def finalize_order(key: ec.EllipticCurvePrivateKey, claims: DeviceClaims) -> FinalizeOrder:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERIAL)]))
        .sign(key, hashes.SHA384())
    )
    return FinalizeOrder(
        correlation_id="corr-43",
        order_id="order-42",
        account_id="acct-42",
        identifiers=[Identifier(type="permanent-identifier", value=SERIAL)],
        csr_der=csr.public_bytes(serialization.Encoding.DER),
        claims=[claims],
    )


async def test_a_genuine_attestation_reaches_the_frontend_as_claims(
    harness: Harness, ca: AttestationCA
) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    await harness.bus.publish(Queue.CHALLENGE_VERIFY, verify_challenge(ca, key))

    result = await harness.next(Queue.FRONTEND_RESULTS)

    assert isinstance(result, ChallengeVerified)
    assert (result.correlation_id, result.challenge_id, result.problem) == (
        "corr-42",
        "chall-42",
        None,
    )
    assert result.claims is not None
    assert result.claims.provider == "simulator"
    assert result.claims.serial_number == SERIAL
    assert result.claims.attested_key == spki_der(key.public_key())
    assert harness.service.dev_providers == ["simulator"]


async def test_a_stale_attestation_reaches_the_frontend_as_bad_attestation_statement(
    harness: Harness, ca: AttestationCA
) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    await harness.bus.publish(
        Queue.CHALLENGE_VERIFY, verify_challenge(ca, key, token="an-earlier-token")
    )

    result = await harness.next(Queue.FRONTEND_RESULTS)

    assert isinstance(result, ChallengeVerified)
    assert result.claims is None and result.problem is not None
    assert result.problem.kind == "badAttestationStatement"
    assert "freshness code does not match" in result.problem.detail


async def test_a_good_csr_goes_on_to_the_policy_stage_with_its_names(
    harness: Harness, ca: AttestationCA
) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    await harness.bus.publish(Queue.CHALLENGE_VERIFY, verify_challenge(ca, key))
    verified = await harness.next(Queue.FRONTEND_RESULTS)
    assert isinstance(verified, ChallengeVerified) and verified.claims is not None

    order = finalize_order(key, verified.claims)
    await harness.bus.publish(Queue.FINALIZE_ATTESTATION, order)
    forwarded = await harness.next(Queue.FINALIZE_POLICY)

    assert isinstance(forwarded, FinalizeOrder)
    assert forwarded.csr is not None
    assert forwarded.csr.common_name == SERIAL
    assert forwarded.csr.public_key == spki_der(key.public_key())
    # Everything else travels on unchanged.
    assert forwarded.order_id == order.order_id and forwarded.claims == order.claims
    assert forwarded.csr_der == order.csr_der


async def test_a_csr_for_another_key_ends_the_order_with_bad_csr(
    harness: Harness, ca: AttestationCA
) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    await harness.bus.publish(Queue.CHALLENGE_VERIFY, verify_challenge(ca, key))
    verified = await harness.next(Queue.FRONTEND_RESULTS)
    assert isinstance(verified, ChallengeVerified) and verified.claims is not None

    intruder = ec.generate_private_key(ec.SECP384R1())
    await harness.bus.publish(Queue.FINALIZE_ATTESTATION, finalize_order(intruder, verified.claims))
    result = await harness.next(Queue.FRONTEND_RESULTS)

    assert isinstance(result, OrderFinalized)
    assert (result.correlation_id, result.order_id) == ("corr-43", "order-42")
    assert result.problem is not None and result.problem.kind == "badCSR"
    assert "is not the attested key" in result.problem.detail
    assert harness.bus.depth(Queue.FINALIZE_POLICY) == 0


async def test_a_message_of_the_wrong_type_is_dead_lettered(harness: Harness) -> None:
    stray = WorkDone(correlation_id="corr-x", kind="order", id="order-x")
    await harness.bus.publish(Queue.CHALLENGE_VERIFY, stray)
    await harness.bus.publish(Queue.FINALIZE_ATTESTATION, stray)
    for _ in range(100):
        if all(
            harness.bus.dead_letters[q]
            for q in (Queue.CHALLENGE_VERIFY, Queue.FINALIZE_ATTESTATION)
        ):
            break
        await asyncio.sleep(0.01)
    assert len(harness.bus.dead_letters[Queue.CHALLENGE_VERIFY]) == 1
    assert len(harness.bus.dead_letters[Queue.FINALIZE_ATTESTATION]) == 1
    assert harness.received[Queue.FRONTEND_RESULTS].empty()


def test_the_service_fits_the_runtime_and_needs_no_database() -> None:
    from acmegate.attestation.service import SPEC
    from acmegate.common.runtime import Service

    service: Service = SPEC.create(Runtime(config=Config(), bus=InProcessBus()))
    assert service.name == "attestation"
    assert isinstance(service, AttestationService)
    assert SPEC.migrations() == []
    assert SPEC.validate(Config()) == []  # Apple's packaged root needs no file
