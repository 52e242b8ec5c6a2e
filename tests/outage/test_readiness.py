"""``/readyz`` and ``Bus.ready`` follow the broker (issue #12 item 2), and the reconnect is
logged and announced to the sweeper (items 1 and 5)."""

from __future__ import annotations

import asyncio

import pytest

from acmegate.common.bus import AmqpBus, Queue
from acmegate.common.messages import WorkDone
from tests.support.private import PrivateRabbit, wait_until

pytestmark = [pytest.mark.outage, pytest.mark.slow]

DONE = WorkDone(correlation_id="c", kind="order", id="x")


async def test_the_bus_is_not_ready_while_the_broker_is_down_and_reconnects_after(
    private_rabbit: PrivateRabbit, capsys: pytest.CaptureFixture[str]
) -> None:
    bus = AmqpBus(private_rabbit.url, namespace="readiness", max_deliveries=4)
    reconnected = asyncio.Event()
    bus.on_reconnect(reconnected.set)
    await bus.start()
    try:
        assert bus.ready()
        await asyncio.to_thread(private_rabbit.stop)

        async def not_ready() -> bool:
            return not bus.ready()

        await wait_until(not_ready, timeout=10)
        # Refused (or not confirmed) while the broker is away: the outbox keeps the work.
        with pytest.raises(Exception):  # noqa: B017
            await asyncio.wait_for(bus.publish(Queue.FRONTEND_RESULTS, DONE), 5)
        await asyncio.to_thread(private_rabbit.start)
        await asyncio.wait_for(reconnected.wait(), 30)

        async def ready() -> bool:
            return bus.ready()

        await wait_until(ready, timeout=10)
        await bus.publish(Queue.FRONTEND_RESULTS, DONE)
    finally:
        await bus.close()
    captured = capsys.readouterr()
    logged = captured.out + captured.err
    assert "message broker connection lost" in logged and "outage_seconds" in logged
