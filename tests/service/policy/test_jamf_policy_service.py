"""The policy service over the fake Jamf Pro, on the in-process bus and a real PostgreSQL:
Revoke On Failure (watch at approval, periodic re-check, revocation sent to the signer) and
what a Jamf outage does to an order (``on_unavailable``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import msgspec
import pytest

from acmegate.common.bus import Delivery, InProcessBus, Queue
from acmegate.common.bus.codec import Message
from acmegate.common.clock import FixedClock
from acmegate.common.config.model import BusConfig
from acmegate.common.db import create_pool
from acmegate.common.messages import FinalizeOrder, OrderFinalized, RevokeCertificates
from acmegate.common.migrations import migrate
from acmegate.common.runtime import Runtime
from acmegate.policy import PolicyService
from acmegate.policy.service import migrations
from acmegate.testkit.fakejamf import FakeJamf
from tests.support.fake_jamf import MAC2_SERIAL, MAC_SERIAL, PHONE_SERIAL, UNMANAGED_SERIAL
from tests.unit.policy.builders import claims, csr, jamf_policy_config, order

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
INTERVAL = timedelta(seconds=60)


@dataclass
class Replica:
    service: PolicyService
    clock: FixedClock


@dataclass
class Harness:
    bus: InProcessBus
    pool: asyncpg.Pool
    replicas: list[Replica] = field(default_factory=list)
    to_signer: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)
    to_frontend: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)
    revocations: list[RevokeCertificates] = field(default_factory=list)

    async def next(self, queue: asyncio.Queue[Message]) -> Message:
        return await asyncio.wait_for(queue.get(), 10)

    async def watches(self) -> list[asyncpg.Record]:
        return await self.pool.fetch(
            "SELECT lookup_policy, identity_kind, identity, device_serial, order_id,"
            " first_approved, last_approved, next_check_at, last_outcome, closed_at,"
            " closed_reason FROM policy.watched_devices ORDER BY identity"
        )

    def advance(self, delta: timedelta) -> None:
        for replica in self.replicas:
            replica.clock.at += delta


def mac_order(serial: str, order_id: str) -> FinalizeOrder:
    device = claims(serial, sip_enabled=True, secure_boot="Full Security")
    return order(
        serial, device=device, info=csr(serial, key=device.attested_key), order_id=order_id
    )


Start = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def start(database_url: str, tmp_path: Path) -> AsyncIterator[Start]:
    pool = await create_pool(database_url, min_size=1, max_size=8)
    harness: Harness | None = None

    async def begin(fake: FakeJamf, *, source: str = "", replicas: int = 1) -> Harness:
        nonlocal harness
        config = jamf_policy_config(fake.url, tmp_path, source=source, extra="")
        config = msgspec.structs.replace(
            config,
            bus=BusConfig(max_deliveries=4),
            revocation_check=msgspec.structs.replace(
                config.revocation_check, interval=int(INTERVAL.total_seconds())
            ),
        )
        bus = InProcessBus(max_deliveries=4)
        await bus.start()
        harness = Harness(bus, pool)
        for _ in range(replicas):
            clock = FixedClock(NOW)
            service = PolicyService(Runtime(config=config, bus=bus, pool=pool, clock=clock))
            connection = await asyncpg.connect(database_url)
            try:
                await migrate(connection, *migrations())
            finally:
                await connection.close()
            await service.start()
            harness.replicas.append(Replica(service, clock))

        async def to_signer(message: Message, delivery: Delivery) -> None:
            harness.to_signer.put_nowait(message)  # type: ignore[union-attr]

        async def to_frontend(message: Message, delivery: Delivery) -> None:
            harness.to_frontend.put_nowait(message)  # type: ignore[union-attr]

        async def revoke(message: Message, delivery: Delivery) -> None:
            assert isinstance(message, RevokeCertificates)
            harness.revocations.append(message)  # type: ignore[union-attr]

        await bus.consume(Queue.FINALIZE_SIGNER, to_signer, prefetch=8)
        await bus.consume(Queue.FRONTEND_RESULTS, to_frontend, prefetch=8)
        await bus.consume(Queue.SIGNER_REVOKE, revoke, prefetch=8)
        return harness

    yield begin
    if harness is not None:
        await harness.bus.close()
        for replica in harness.replicas:
            await replica.service.stop()
    await pool.close()


async def approve(harness: Harness, serial: str, order_id: str) -> None:
    await harness.bus.publish(Queue.FINALIZE_POLICY, mac_order(serial, order_id))
    result = await harness.next(harness.to_signer)
    assert isinstance(result, FinalizeOrder) and result.order_id == order_id
    for _ in range(100):  # the watch is written beside the hand-over to the signer
        if any(w["order_id"] == order_id for w in await harness.watches()):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"no watch for {order_id}")


async def revocations(harness: Harness, count: int) -> list[RevokeCertificates]:
    for _ in range(100):
        if len(harness.revocations) >= count:
            break
        await asyncio.sleep(0.02)
    return harness.revocations


async def test_an_approval_under_revoke_on_failure_watches_the_device(
    start: Start, fake_jamf: FakeJamf
) -> None:
    harness = await start(fake_jamf)
    await approve(harness, MAC_SERIAL, "o-1")
    [watch] = await harness.watches()
    assert dict(watch) == {
        "lookup_policy": "by-serial",
        "identity_kind": "serial_number",
        "identity": MAC_SERIAL,
        "device_serial": MAC_SERIAL,
        "order_id": "o-1",
        "first_approved": NOW,
        "last_approved": NOW,
        "next_check_at": NOW + INTERVAL,
        "last_outcome": None,
        "closed_at": None,
        "closed_reason": None,
    }


async def test_a_device_that_left_jamf_is_revoked_once_and_one_still_there_is_kept(
    start: Start, fake_jamf: FakeJamf
) -> None:
    harness = await start(fake_jamf)
    await approve(harness, MAC_SERIAL, "o-1")
    await approve(harness, MAC2_SERIAL, "o-2")
    checker = harness.replicas[0].service.checker
    assert checker is not None
    assert (await checker.run_once()).checked == 0  # nothing due yet

    fake_jamf.remove_device(MAC_SERIAL)
    harness.advance(INTERVAL)
    done = await checker.run_once()
    assert (done.checked, done.revoked, done.unavailable) == (2, 1, 0)
    [revocation] = await revocations(harness, 1)
    assert revocation.device_serial == MAC_SERIAL and revocation.serials == []
    assert revocation.reason == "cessationOfOperation"
    assert revocation.detail == (
        f"device {MAC_SERIAL} is no longer in signal source 'jamf' (lookup policy 'by-serial')"
    )
    gone, kept = await harness.watches()
    assert gone["identity"] == MAC_SERIAL and gone["closed_at"] == NOW + INTERVAL
    assert gone["closed_reason"].startswith("cessationOfOperation: device")
    assert kept["closed_at"] is None and kept["last_outcome"] == "found"
    assert kept["next_check_at"] == NOW + 2 * INTERVAL

    harness.advance(INTERVAL)
    assert (await checker.run_once()).revoked == 0  # closed watches are not checked again
    assert len(harness.revocations) == 1


async def test_a_device_no_longer_managed_loses_its_privilege(
    start: Start, fake_jamf: FakeJamf
) -> None:
    harness = await start(fake_jamf)
    await approve(harness, MAC_SERIAL, "o-1")
    fake_jamf.set_managed(MAC_SERIAL, False)
    harness.advance(INTERVAL)
    checker = harness.replicas[0].service.checker
    assert checker is not None
    await checker.run_once()
    [revocation] = await revocations(harness, 1)
    assert revocation.reason == "privilegeWithdrawn"
    assert "is no longer managed by signal source 'jamf'" in (revocation.detail or "")


async def test_jamf_down_revokes_nothing_and_the_device_is_checked_next_round(
    start: Start, fake_jamf: FakeJamf
) -> None:
    harness = await start(fake_jamf)
    await approve(harness, MAC_SERIAL, "o-1")
    fake_jamf.faults.error_rate = 1.0
    harness.advance(INTERVAL)
    checker = harness.replicas[0].service.checker
    assert checker is not None
    assert (await checker.run_once()).unavailable == 1
    [watch] = await harness.watches()
    assert watch["closed_at"] is None and watch["last_outcome"] == "unavailable"
    fake_jamf.faults.error_rate = 0.0
    fake_jamf.remove_device(MAC_SERIAL)
    harness.advance(INTERVAL)
    assert (await checker.run_once()).revoked == 1
    assert [r.device_serial for r in await revocations(harness, 1)] == [MAC_SERIAL]


async def test_replicas_share_the_rechecks_and_revoke_each_device_once(
    start: Start, fake_jamf: FakeJamf
) -> None:
    harness = await start(fake_jamf, replicas=3)
    serials = [MAC_SERIAL, MAC2_SERIAL, PHONE_SERIAL]
    for index, serial in enumerate(serials):
        await approve(harness, serial, f"o-{index}")
    for serial in serials:
        fake_jamf.remove_device(serial)
    harness.advance(INTERVAL)
    fake_jamf.faults.delay = 0.05  # the rounds overlap
    rounds = await asyncio.gather(
        *(r.service.checker.run_once() for r in harness.replicas if r.service.checker)
    )
    assert sum(r.checked for r in rounds) == 3
    done = await revocations(harness, 3)
    await asyncio.sleep(0.1)
    assert sorted(r.device_serial or "" for r in done) == sorted(serials)


async def test_a_device_approved_again_after_revocation_is_watched_again(
    start: Start, fake_jamf: FakeJamf
) -> None:
    harness = await start(fake_jamf)
    await approve(harness, MAC_SERIAL, "o-1")
    fake_jamf.set_managed(MAC_SERIAL, False)
    harness.advance(INTERVAL)
    checker = harness.replicas[0].service.checker
    assert checker is not None
    await checker.run_once()
    fake_jamf.set_managed(MAC_SERIAL, True)
    await approve(harness, MAC_SERIAL, "o-2")
    [watch] = await harness.watches()
    assert watch["closed_at"] is None and watch["order_id"] == "o-2"
    assert watch["first_approved"] == NOW and watch["last_approved"] == NOW + INTERVAL


async def test_an_unmanaged_device_is_refused_and_not_watched(
    start: Start, fake_jamf: FakeJamf
) -> None:
    harness = await start(fake_jamf)
    await harness.bus.publish(Queue.FINALIZE_POLICY, mac_order(UNMANAGED_SERIAL, "o-9"))
    result = await harness.next(harness.to_frontend)
    assert isinstance(result, OrderFinalized) and result.problem is not None
    assert result.problem.kind == "rejectedIdentifier"
    assert result.problem.detail == (
        f"device {UNMANAGED_SERIAL} is not managed (signal source 'jamf')"
    )
    assert await harness.watches() == []


# --- Jamf down: on_unavailable ------------------------------------------------------------


async def test_on_unavailable_fail_answers_at_the_first_failure(
    start: Start, fake_jamf: FakeJamf
) -> None:
    harness = await start(fake_jamf, source="on_unavailable: fail")
    fake_jamf.faults.error_rate = 1.0
    await harness.bus.publish(Queue.FINALIZE_POLICY, mac_order(MAC_SERIAL, "o-1"))
    result = await harness.next(harness.to_frontend)
    assert isinstance(result, OrderFinalized) and result.problem is not None
    assert result.problem.kind == "serverInternal"
    assert result.problem.detail == (
        "signal source 'jamf' is unavailable: Jamf Pro server error: "
        "POST /api/oauth/token answered HTTP 503"
    )
    assert len(fake_jamf.stats.paths("/api/oauth/token")) == 1  # one delivery, no retries
    assert harness.to_signer.empty()


async def test_on_unavailable_retry_lets_the_bus_redeliver_until_jamf_is_back(
    start: Start, fake_jamf: FakeJamf
) -> None:
    harness = await start(fake_jamf, source="on_unavailable: retry")
    fake_jamf.faults.fail_next = 2
    await harness.bus.publish(Queue.FINALIZE_POLICY, mac_order(MAC_SERIAL, "o-1"))
    result = await harness.next(harness.to_signer)
    assert isinstance(result, FinalizeOrder) and result.record is not None
    assert result.record.source_attributes == {
        "department": "Engineering",
        "email": "llama@example.com",
    }
    assert harness.to_frontend.empty()


async def test_on_unavailable_retry_fails_cleanly_once_the_budget_is_spent(
    start: Start, fake_jamf: FakeJamf
) -> None:
    harness = await start(fake_jamf)
    fake_jamf.faults.error_rate = 1.0
    await harness.bus.publish(Queue.FINALIZE_POLICY, mac_order(MAC_SERIAL, "o-1"))
    result = await harness.next(harness.to_frontend)
    assert isinstance(result, OrderFinalized) and result.problem is not None
    assert result.problem.kind == "serverInternal"
    # max_deliveries 4: deliveries 1 and 2 raised, the third answered.
    assert len(fake_jamf.stats.paths("/api/oauth/token")) == 3
    await asyncio.sleep(0.1)
    assert harness.bus.dead_letters[Queue.FINALIZE_POLICY] == []
