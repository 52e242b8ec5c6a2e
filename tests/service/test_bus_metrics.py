"""Both buses count what they do to each message in /metrics, the same way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from acmegate.common.bus import AmqpBus, Bus, Delivery, InProcessBus, Queue, Reject
from acmegate.common.bus.codec import Message
from acmegate.common.messages import OrderFinalized
from tests.support.metrics import local


@pytest.fixture(params=["in-process", "amqp"])
async def bus(
    request: pytest.FixtureRequest, amqp_server_url: str, bus_namespace: str
) -> AsyncIterator[Bus]:
    bus: Bus
    if request.param == "in-process":
        bus = InProcessBus(max_deliveries=2)
    else:
        bus = AmqpBus(amqp_server_url, namespace=bus_namespace, max_deliveries=2)
    await bus.start()
    try:
        yield bus
    finally:
        await bus.close()


QUEUE = Queue.SIGNER_REVOKE  # any queue: the labels are the queue names


def counts() -> dict[str, float]:
    queue = str(QUEUE)
    return {
        "published": local("acmegate_bus_published_total", queue=queue),
        "acked": local("acmegate_bus_consumed_total", queue=queue, outcome="acked"),
        "retried": local("acmegate_bus_consumed_total", queue=queue, outcome="retried"),
        "redelivered": local("acmegate_bus_redeliveries_total", queue=queue),
        "rejected": local("acmegate_bus_dead_lettered_total", queue=queue, reason="rejected"),
        "exhausted": local(
            "acmegate_bus_dead_lettered_total", queue=queue, reason="max_deliveries"
        ),
        "handled": local("acmegate_bus_handler_duration_seconds_count", queue=queue),
    }


async def test_publishes_acks_retries_and_dead_letters_are_counted(bus: Bus) -> None:
    before = counts()

    async def handler(message: Message, delivery: Delivery) -> None:
        assert isinstance(message, OrderFinalized)
        if message.order_id == "flaky" and delivery.delivery_count == 1:
            raise RuntimeError("once")
        if message.order_id == "poison":
            raise Reject("never")
        if message.order_id == "broken":
            raise RuntimeError("always")

    await bus.consume(QUEUE, handler)
    for order_id in ("fine", "flaky", "poison", "broken"):
        await bus.publish(QUEUE, OrderFinalized(correlation_id="c", order_id=order_id))
    # fine 1, flaky 1+2, poison 1, broken 1+2 (then dead: max_deliveries 2) = 6 deliveries.
    for _ in range(100):
        if counts()["handled"] - before["handled"] == 6:
            break
        await asyncio.sleep(0.1)
    after = counts()
    moved = {key: after[key] - before[key] for key in after}
    assert moved == {
        "published": 4,
        "acked": 2,
        "retried": 2,
        "redelivered": 2,
        "rejected": 1,
        "exhausted": 1,
        "handled": 6,
    }
