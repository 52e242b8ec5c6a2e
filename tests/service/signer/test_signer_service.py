"""The signer service: sign once per order, answer every copy alike, record revocations."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import msgspec
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import PolicyBuilder, Store

from acmegate.common.bus import Delivery, Queue, Reject
from acmegate.common.messages import (
    CertificateSpec,
    DeviceClaims,
    EnrollmentRecord,
    FinalizeOrder,
    Identifier,
    NameAttribute,
    OrderFinalized,
    RevokeCertificates,
    SanEntry,
)
from acmegate.common.x509names import spki_der
from acmegate.signer.db.inventory import find_certificate, list_certificates
from tests.service.signer.conftest import SignerWorld

FIRST = Delivery(Queue.FINALIZE_SIGNER, 1, False)
REVOKE = Delivery(Queue.SIGNER_REVOKE, 1, False)


def _order(
    order_id: str = "order-1", device: str = "C02XK0AAJGH5", **changes: object
) -> FinalizeOrder:
    key = spki_der(ec.generate_private_key(ec.SECP256R1()).public_key())
    identifier = Identifier(type="permanent-identifier", value=device)
    claims = DeviceClaims(provider="apple", format="apple", attested_key=key, serial_number=device)
    message = FinalizeOrder(
        correlation_id=f"corr-{order_id}",
        order_id=order_id,
        account_id="account-1",
        identifiers=[identifier],
        csr_der=b"csr",
        claims=[claims],
        spec=CertificateSpec(
            ca="issuing",
            template="device",
            public_key=key,
            subject=[NameAttribute(oid="2.5.4.3", value=device)],
            sans=[SanEntry(type="permanent_identifier", value=device)],
            validity_seconds=7 * 86400,
        ),
        record=EnrollmentRecord(
            identifier=identifier,
            device=claims,
            signal_source="inventory",
            source_attributes={"department": "engineering"},
            source_groups=["laptops"],
            enrollment_policy="devices",
        ),
    )
    return msgspec.structs.replace(message, **changes)


async def _row_count(world: SignerWorld) -> int:
    count: int = await world.pool.fetchval("SELECT count(*) FROM pki.certificates")
    return count


async def test_a_finalize_with_a_spec_is_answered_with_a_chain_that_verifies(
    world: SignerWorld,
) -> None:
    await world.start_signer()
    order = _order()
    await world.bus.publish(Queue.FINALIZE_SIGNER, order)
    reply = await world.results.next()

    assert reply.order_id == "order-1" and reply.correlation_id == "corr-order-1"
    assert reply.problem is None and reply.chain_pem is not None
    leaf, issuing = x509.load_pem_x509_certificates(reply.chain_pem.encode())
    assert format(leaf.serial_number, "x") == reply.certificate_serial
    verifier = (
        PolicyBuilder().store(Store([world.root])).time(world.clock.now()).build_client_verifier()
    )
    assert verifier.verify(leaf, [issuing]).chain == [leaf, issuing, world.root]

    assert reply.certificate_serial is not None
    stored = await find_certificate(world.pool, reply.certificate_serial.upper())
    assert stored is not None
    assert stored.status == "valid" and stored.revoked_at is None
    assert stored.order_id == "order-1" and stored.account_id == "account-1"
    assert stored.ca_name == "issuing" and stored.template == "device"
    assert (stored.identifier_type, stored.identifier_value) == (
        "permanent-identifier",
        "C02XK0AAJGH5",
    )
    assert stored.device_serial == "C02XK0AAJGH5"
    assert stored.der == leaf.public_bytes(serialization.Encoding.DER)
    assert stored.chain_pem == reply.chain_pem
    assert stored.record == order.record
    assert stored.not_before == leaf.not_valid_before_utc
    assert stored.not_after == leaf.not_valid_after_utc
    assert [
        c.serial for c in await list_certificates(world.pool, device_serial="C02XK0AAJGH5")
    ] == [reply.certificate_serial]


async def test_a_redelivered_finalize_gets_the_same_certificate_and_is_signed_once(
    world: SignerWorld,
) -> None:
    await world.start_signer()
    order = _order()
    await world.bus.publish(Queue.FINALIZE_SIGNER, order)
    first = await world.results.next()
    world.clock.at += timedelta(minutes=5)  # the copy arrives later
    await world.bus.publish(Queue.FINALIZE_SIGNER, order)
    second = await world.results.next()

    assert first.certificate_serial is not None
    assert second == first
    assert len(world.ledger.signed) == 1
    assert await _row_count(world) == 1


async def test_concurrent_copies_on_two_replicas_are_signed_once_and_answered_alike(
    world: SignerWorld,
) -> None:
    one = await world.start_signer()
    two = await world.start_signer(own_pool=True)
    orders = [_order(f"order-{n}", device=f"DEVICE{n}") for n in range(10)]
    # Slow signatures keep each winner's reservation open while the other copy arrives, so
    # the loser must wait on the order's unique key rather than find a committed row.
    world.ledger.delay = 0.05

    # Each order reaches both replicas at once, as when a redelivery races the original.
    await asyncio.gather(
        *(replica.on_finalize(order, FIRST) for order in orders for replica in (one, two))
    )
    replies: dict[str, list[OrderFinalized]] = {}
    for _ in range(20):
        reply = await world.results.next()
        replies.setdefault(reply.order_id, []).append(reply)

    assert sorted(replies) == sorted(o.order_id for o in orders)
    for pair in replies.values():
        assert len(pair) == 2 and pair[0] == pair[1] and pair[0].certificate_serial is not None
    assert len(world.ledger.signed) == 10
    assert await _row_count(world) == 10
    signed = {format(c.serial_number, "x") for c in world.ledger.signed}
    assert signed == {pair[0].certificate_serial for pair in replies.values()}


async def test_a_failed_signature_leaves_nothing_behind_and_the_retry_signs_afresh(
    world: SignerWorld,
) -> None:
    world.ledger.failures_left = 1
    await world.start_signer()
    await world.bus.publish(Queue.FINALIZE_SIGNER, _order())
    reply = await world.results.next()

    assert reply.problem is None and reply.certificate_serial is not None
    assert world.ledger.attempts == 2 and len(world.ledger.signed) == 1
    assert await _row_count(world) == 1


async def test_a_finalize_without_a_spec_is_dead_lettered(world: SignerWorld) -> None:
    signer = await world.start_signer()
    with pytest.raises(Reject, match="without a spec"):
        await signer.on_finalize(_order(spec=None), FIRST)

    await world.bus.publish(Queue.FINALIZE_SIGNER, _order(spec=None))
    for _ in range(100):
        if world.bus.dead_letters[Queue.FINALIZE_SIGNER]:
            break
        await asyncio.sleep(0.01)
    assert len(world.bus.dead_letters[Queue.FINALIZE_SIGNER]) == 1
    assert world.results.queue.empty()
    assert world.ledger.attempts == 0


async def test_an_unknown_ca_ends_the_order_with_server_internal(world: SignerWorld) -> None:
    await world.start_signer()
    order = _order()
    assert order.spec is not None
    await world.bus.publish(
        Queue.FINALIZE_SIGNER,
        msgspec.structs.replace(order, spec=msgspec.structs.replace(order.spec, ca="elsewhere")),
    )
    reply = await world.results.next()

    assert reply.certificate_serial is None and reply.chain_pem is None
    assert reply.problem is not None
    assert reply.problem.kind == "serverInternal"
    assert "'elsewhere'" in reply.problem.detail
    assert await _row_count(world) == 0


async def test_revocation_by_serial_and_by_device_is_recorded_once(world: SignerWorld) -> None:
    signer = await world.start_signer()
    serials = []
    for order in (_order("a1", "DEVICE-A"), _order("a2", "DEVICE-A"), _order("b1", "DEVICE-B")):
        await signer.on_finalize(order, FIRST)
        serials.append((await world.results.next()).certificate_serial)
    a1, a2, b1 = serials
    assert a1 is not None and a2 is not None and b1 is not None

    first_time = world.clock.now()
    colon_form = ":".join(a1.upper()[i : i + 2] for i in range(0, len(a1), 2))
    await signer.on_revoke(
        RevokeCertificates(correlation_id="r1", reason="keyCompromise", serials=[colon_form]),
        REVOKE,
    )
    world.clock.at += timedelta(hours=1)
    device_revocation = RevokeCertificates(
        correlation_id="r2", reason="cessationOfOperation", device_serial="DEVICE-A"
    )
    await signer.on_revoke(device_revocation, REVOKE)
    world.clock.at += timedelta(hours=1)
    await signer.on_revoke(device_revocation, REVOKE)  # a redelivery changes nothing

    found = {s: await find_certificate(world.pool, s) for s in (a1, a2, b1)}
    first, second, other = found[a1], found[a2], found[b1]
    assert first is not None and second is not None and other is not None
    assert (first.status, first.revocation_reason, first.revoked_at) == (
        "revoked",
        "keyCompromise",
        first_time,
    )
    assert (second.status, second.revocation_reason, second.revoked_at) == (
        "revoked",
        "cessationOfOperation",
        first_time + timedelta(hours=1),
    )
    assert other.status == "valid" and other.revoked_at is None
    assert [c.serial for c in await list_certificates(world.pool, status="valid")] == [b1]


async def test_a_revocation_naming_a_device_never_revokes_a_serial_of_another(
    world: SignerWorld,
) -> None:
    # Revoke On Failure names the device it looked up; a serial that came with the request
    # (FreeRADIUS's attributes) but was issued to another device stays valid.
    signer = await world.start_signer()
    serials = []
    for order in (_order("a1", "DEVICE-A"), _order("b1", "DEVICE-B")):
        await signer.on_finalize(order, FIRST)
        serials.append((await world.results.next()).certificate_serial)
    a1, b1 = serials
    assert a1 is not None and b1 is not None
    await signer.on_revoke(
        RevokeCertificates(
            correlation_id="r",
            reason="privilegeWithdrawn",
            serials=[a1, b1],
            device_serial="DEVICE-B",
        ),
        REVOKE,
    )
    statuses = {s: (await find_certificate(world.pool, s)) for s in (a1, b1)}
    assert {s: r.status for s, r in statuses.items() if r is not None} == {
        a1: "valid",
        b1: "revoked",
    }


@pytest.mark.parametrize(
    "message",
    [
        RevokeCertificates(correlation_id="r", reason="certificateHold", serials=["ab"]),
        RevokeCertificates(correlation_id="r", reason="superseded", serials=["not hex"]),
        RevokeCertificates(correlation_id="r", reason="superseded"),
    ],
)
async def test_a_revocation_that_can_never_apply_is_rejected(
    world: SignerWorld, message: RevokeCertificates
) -> None:
    signer = await world.start_signer()
    with pytest.raises(Reject):
        await signer.on_revoke(message, REVOKE)
