"""A handler that fails because a dependency is down is run again on the same delivery and never
dead-lettered for it (issue #12 item 4); a content failure still is."""

from __future__ import annotations

import asyncio

import asyncpg

from acmegate.common.bus import Delivery, InProcessBus, Queue
from acmegate.common.bus.codec import Message
from acmegate.common.messages import WorkDone

DONE = WorkDone(correlation_id="c", kind="order", id="x")


async def test_a_database_outage_longer_than_max_deliveries_dead_letters_nothing() -> None:
    bus = InProcessBus(max_deliveries=2)
    seen: list[int] = []
    handled = asyncio.Event()

    async def handler(message: Message, delivery: Delivery) -> None:
        seen.append(delivery.delivery_count)
        if len(seen) <= 5:
            raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle")
        handled.set()

    await bus.start()
    try:
        await bus.consume(Queue.FRONTEND_RESULTS, handler, prefetch=1)
        await bus.publish(Queue.FRONTEND_RESULTS, DONE)
        await asyncio.wait_for(handled.wait(), 20)
    finally:
        await bus.close()
    assert seen == [1] * 6  # one delivery, run six times
    assert not bus.dead_letters[Queue.FRONTEND_RESULTS]


async def test_a_content_failure_still_dead_letters_after_max_deliveries() -> None:
    bus = InProcessBus(max_deliveries=2)
    seen: list[int] = []

    async def handler(message: Message, delivery: Delivery) -> None:
        seen.append(delivery.delivery_count)
        raise ValueError("bad content")

    await bus.start()
    try:
        await bus.consume(Queue.FRONTEND_RESULTS, handler, prefetch=1)
        await bus.publish(Queue.FRONTEND_RESULTS, DONE)
        for _ in range(100):
            if bus.dead_letters[Queue.FRONTEND_RESULTS]:
                break
            await asyncio.sleep(0.05)
    finally:
        await bus.close()
    assert seen == [1, 2]
    assert len(bus.dead_letters[Queue.FRONTEND_RESULTS]) == 1
