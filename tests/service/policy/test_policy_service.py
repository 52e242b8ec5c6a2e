"""The policy service on the in-process bus with a real PostgreSQL: what reaches the next stage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import msgspec
import pytest

from acmegate.common.bus import Delivery, InProcessBus, Queue
from acmegate.common.bus.codec import Message
from acmegate.common.clock import FixedClock
from acmegate.common.config import Config, ConfigError
from acmegate.common.config.model import BusConfig, SignalSourceConfig
from acmegate.common.db import create_pool
from acmegate.common.messages import (
    FinalizeOrder,
    Identifier,
    NameAttribute,
    OrderFinalized,
    SanEntry,
)
from acmegate.common.migrations import migrate
from acmegate.common.runtime import Runtime
from acmegate.policy import PolicyService
from acmegate.policy.service import migrations
from acmegate.policy.sources import (
    DeviceKind,
    DeviceRecord,
    IdentityKind,
    SignalSource,
    SourceUnavailable,
    ValidationReport,
    build_source,
)
from tests.unit.policy.builders import SERIAL, claims, csr, make_config, order

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class Gateway:
    """A running policy service and what it sent to the signer and the frontend."""

    service: PolicyService
    bus: InProcessBus
    pool: asyncpg.Pool
    to_signer: asyncio.Queue[Message]
    to_frontend: asyncio.Queue[Message]

    async def next(self, queue: asyncio.Queue[Message]) -> Message:
        return await asyncio.wait_for(queue.get(), 5)

    async def audit(self, expected_rows: int) -> list[asyncpg.Record]:
        # The audit row and the published message go out together: wait for the row.
        for _ in range(100):
            rows = await self.pool.fetch(
                "SELECT order_id, correlation_id, lookup_policy, source, identity_kind, identity,"
                " outcome, managed, detail, at FROM policy.lookups ORDER BY id"
            )
            if len(rows) >= expected_rows:
                return rows
            await asyncio.sleep(0.02)
        return rows


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


StartGateway = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def start_gateway(database_url: str, pool: asyncpg.Pool) -> AsyncIterator[StartGateway]:
    """Start a policy service (base configuration unless given) with collectors downstream."""
    running: list[tuple[InProcessBus, PolicyService]] = []

    async def start(
        config: Config | None = None,
        source_factory: Callable[[SignalSourceConfig], SignalSource] = build_source,
    ) -> Gateway:
        config = config or msgspec.structs.replace(make_config(), bus=BusConfig(max_deliveries=4))
        bus = InProcessBus(max_deliveries=config.bus.max_deliveries)
        await bus.start()
        runtime = Runtime(config=config, bus=bus, pool=pool, clock=FixedClock(NOW))
        service = PolicyService(runtime, source_factory=source_factory)
        running.append((bus, service))
        connection = await asyncpg.connect(database_url)
        try:
            await migrate(connection, *migrations())
        finally:
            await connection.close()
        await service.start()
        gateway = Gateway(service, bus, pool, asyncio.Queue(), asyncio.Queue())

        async def to_signer(message: Message, delivery: Delivery) -> None:
            gateway.to_signer.put_nowait(message)

        async def to_frontend(message: Message, delivery: Delivery) -> None:
            gateway.to_frontend.put_nowait(message)

        await bus.consume(Queue.FINALIZE_SIGNER, to_signer, prefetch=1)
        await bus.consume(Queue.FRONTEND_RESULTS, to_frontend, prefetch=1)
        return gateway

    yield start
    for bus, service in running:
        await bus.close()
        await service.stop()


async def test_a_known_device_goes_to_the_signer_with_spec_and_record(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway()
    device = claims()
    finalize = order(device=device, info=csr(dns=["mac-1.example.com"], key=device.attested_key))
    await gateway.bus.publish(Queue.FINALIZE_POLICY, finalize)

    result = await gateway.next(gateway.to_signer)
    assert isinstance(result, FinalizeOrder)
    assert result.order_id == finalize.order_id and result.csr == finalize.csr
    assert result.spec is not None and result.record is not None
    assert result.spec.ca == "devices-ca" and result.spec.template == "device"
    assert result.spec.public_key == device.attested_key
    assert result.spec.subject == [
        NameAttribute("2.5.4.3", SERIAL),
        NameAttribute("2.5.4.10", "Example, Inc."),
        NameAttribute("2.5.4.11", "IT"),  # ${/source/department}
    ]
    assert result.spec.sans == [
        SanEntry("dns", "mac-1.example.com"),
        SanEntry("rfc822", "alice@example.com"),  # ${/source/email}
        SanEntry("permanent_identifier", SERIAL),
    ]
    assert result.record.identifier == Identifier("permanent-identifier", SERIAL)
    assert result.record.device == device
    assert result.record.enrollment_policy == "managed-devices"
    assert (result.record.workflow, result.record.device_role) == ("eligible", "modern-apple")
    assert (result.record.lookup_policy, result.record.signal_source) == ("by-serial", "inventory")
    assert result.record.source_groups == ["All Managed Clients", "Cert-Eligible"]
    assert result.record.revoke_on_failure is True
    assert gateway.to_frontend.empty()

    rows = await gateway.audit(1)
    assert [dict(row) for row in rows] == [
        {
            "order_id": "order-1",
            "correlation_id": "corr-order-1",
            "lookup_policy": "by-serial",
            "source": "inventory",
            "identity_kind": "serial_number",
            "identity": SERIAL,
            "outcome": "found",
            "managed": True,
            "detail": None,
            "at": NOW,
        }
    ]


async def test_an_unknown_device_is_answered_with_rejected_identifier(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway()
    await gateway.bus.publish(Queue.FINALIZE_POLICY, order("C02NOTKNOWN1", order_id="o-2"))

    result = await gateway.next(gateway.to_frontend)
    assert isinstance(result, OrderFinalized)
    assert (result.order_id, result.correlation_id) == ("o-2", "corr-o-2")
    assert result.certificate_serial is None and result.problem is not None
    assert result.problem.kind == "rejectedIdentifier"
    assert result.problem.detail == "device C02NOTKNOWN1 is not known to signal source 'inventory'"
    assert gateway.to_signer.empty()
    rows = await gateway.audit(1)
    assert [(r["identity"], r["outcome"], r["managed"]) for r in rows] == [
        ("C02NOTKNOWN1", "unknown", None)
    ]


async def test_a_template_the_csr_cannot_fill_is_answered_with_bad_csr(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway()
    device = claims()
    await gateway.bus.publish(
        Queue.FINALIZE_POLICY, order(device=device, info=csr(None, key=device.attested_key))
    )
    result = await gateway.next(gateway.to_frontend)
    assert isinstance(result, OrderFinalized) and result.problem is not None
    assert result.problem.kind == "badCSR"
    assert result.problem.detail == (
        "template 'device' needs ${/csr/subject/commonname} but the CSR has no subject commonName"
    )


class FlakySource:
    """A signal source that is down for its first ``failures`` lookups."""

    def __init__(self, inner: SignalSource, failures: int) -> None:
        self.name = inner.name
        self.inner = inner
        self.failures = failures
        self.calls = 0

    async def lookup(
        self,
        identity: str,
        kind: IdentityKind,
        *,
        fresh: bool = False,
        likely: DeviceKind | None = None,
    ) -> DeviceRecord | None:
        self.calls += 1
        if self.calls <= self.failures:
            raise SourceUnavailable(self.name, "connection refused")
        return await self.inner.lookup(identity, kind, fresh=fresh, likely=likely)

    async def validate(self) -> ValidationReport:
        return await self.inner.validate()

    async def close(self) -> None:
        await self.inner.close()


async def test_an_unavailable_source_is_retried_then_the_order_fails_cleanly(
    start_gateway: StartGateway,
) -> None:
    sources: list[FlakySource] = []

    def factory(config: SignalSourceConfig) -> SignalSource:
        sources.append(FlakySource(build_source(config), failures=100))
        return sources[-1]

    gateway = await start_gateway(source_factory=factory)
    await gateway.bus.publish(Queue.FINALIZE_POLICY, order(order_id="o-3"))

    result = await gateway.next(gateway.to_frontend)
    assert isinstance(result, OrderFinalized) and result.problem is not None
    assert result.order_id == "o-3"
    assert result.problem.kind == "serverInternal"
    assert result.problem.detail == "signal source 'inventory' is unavailable: connection refused"
    # max_deliveries is 4: deliveries 1 and 2 raise (redelivered), the 3rd answers.
    assert sources[0].calls == 3
    assert gateway.to_signer.empty()
    await asyncio.sleep(0.1)
    assert gateway.bus.dead_letters[Queue.FINALIZE_POLICY] == []
    rows = await gateway.audit(3)
    assert [(r["outcome"], r["detail"]) for r in rows] == [
        ("unavailable", "connection refused")
    ] * 3


async def test_a_source_that_recovers_within_the_retries_lets_the_order_through(
    start_gateway: StartGateway,
) -> None:
    sources: list[FlakySource] = []

    def factory(config: SignalSourceConfig) -> SignalSource:
        sources.append(FlakySource(build_source(config), failures=1))
        return sources[-1]

    gateway = await start_gateway(source_factory=factory)
    await gateway.bus.publish(Queue.FINALIZE_POLICY, order(order_id="o-4"))
    result = await gateway.next(gateway.to_signer)
    assert isinstance(result, FinalizeOrder) and result.spec is not None
    assert sources[0].calls == 2
    assert gateway.to_frontend.empty()


async def test_an_order_without_a_verified_csr_is_dead_lettered(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway()
    await gateway.bus.publish(
        Queue.FINALIZE_POLICY, msgspec.structs.replace(order(order_id="o-5"), csr=None)
    )
    for _ in range(100):
        if gateway.bus.dead_letters[Queue.FINALIZE_POLICY]:
            break
        await asyncio.sleep(0.02)
    assert len(gateway.bus.dead_letters[Queue.FINALIZE_POLICY]) == 1
    assert gateway.to_signer.empty() and gateway.to_frontend.empty()


async def test_an_invalid_policy_configuration_stops_the_service_at_start(
    start_gateway: StartGateway,
) -> None:
    config = make_config()
    bad = msgspec.structs.replace(
        config,
        certificate_templates=[
            msgspec.structs.replace(config.certificate_templates[0], subject="CN=${/csr/cn}")
        ],
    )
    with pytest.raises(ConfigError, match=r"\$.certificate_templates\[0\].subject: unknown"):
        await start_gateway(bad)
