"""Dead-letter queues on RabbitMQ: list, replay or discard what ``<ns>.<queue>.dead`` holds
(``acmegate dead-letters``; docs/operations.md "Dead letters").

A message lands there only for its content (rejected as poison, undecodable, or failing
``bus.max_deliveries`` times for another reason; dependency outages never count, bus/outages.py).
Replaying publishes the stored bytes and headers unchanged to the work queue (every handler is
idempotent, so a replay of work already done changes nothing); discarding acknowledges it away.
Messages are taken with basic.get one at a time: ones not selected go back to the queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from acmegate.common.bus.base import Queue

DEAD_SUFFIX = ".dead"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    queue: Queue
    message_id: str  # the AMQP message-id or, absent, the correlation id
    schema: str | None
    reason: str | None  # from the x-death / x-first-death-reason headers
    size: int


def _identity(message: AbstractIncomingMessage) -> str:
    return message.message_id or message.correlation_id or "-"


def _reason(headers: dict[str, Any]) -> str | None:
    reason = headers.get("x-first-death-reason")
    return reason.decode() if isinstance(reason, bytes) else (str(reason) if reason else None)


def _letter(queue: Queue, message: AbstractIncomingMessage) -> DeadLetter:
    headers = dict(message.headers or {})
    schema = headers.get("x-schema")
    return DeadLetter(
        queue,
        _identity(message),
        schema.decode() if isinstance(schema, bytes) else (str(schema) if schema else None),
        _reason(headers),
        len(message.body),
    )


class DeadLetters:
    """A connection to the broker for one namespace's dead-letter queues."""

    def __init__(self, url: str, namespace: str) -> None:
        self.url = url
        self.namespace = namespace
        self._connection: aio_pika.abc.AbstractConnection | None = None

    async def __aenter__(self) -> DeadLetters:
        self._connection = await aio_pika.connect(self.url)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._connection is not None:
            await self._connection.close()

    def _name(self, queue: Queue) -> str:
        return f"{self.namespace}.{queue}{DEAD_SUFFIX}"

    async def counts(self) -> dict[Queue, int]:
        """How many dead letters each work queue has (queues never declared count 0)."""
        assert self._connection is not None
        counts: dict[Queue, int] = {}
        for queue in Queue:
            channel = await self._connection.channel()
            try:
                declared = await channel.declare_queue(self._name(queue), passive=True)
                counts[queue] = declared.declaration_result.message_count or 0
            except aio_pika.exceptions.ChannelClosed:
                counts[queue] = 0  # not declared yet: no service ever started here
            finally:
                if not channel.is_closed:
                    await channel.close()
        return counts

    async def _each(self, queue: Queue) -> list[AbstractIncomingMessage]:
        """Every message of the queue, unacknowledged (returned to the queue when the channel
        closes unless acknowledged)."""
        assert self._connection is not None
        channel = await self._connection.channel()
        dead = await channel.get_queue(self._name(queue), ensure=True)
        taken: list[AbstractIncomingMessage] = []
        while (message := await dead.get(no_ack=False, fail=False)) is not None:
            taken.append(message)
        return taken

    async def list(self, queue: Queue) -> list[DeadLetter]:
        messages = await self._each(queue)
        letters = [_letter(queue, message) for message in messages]
        for message in messages:
            await message.nack(requeue=True)
        return letters

    async def replay(self, queue: Queue, message_id: str | None) -> int:
        """Publish the dead letters of ``queue`` (or only ``message_id``) to the work queue
        again, with confirms; returns how many."""
        return await self._take(queue, message_id, replay=True)

    async def discard(self, queue: Queue, message_id: str | None) -> int:
        return await self._take(queue, message_id, replay=False)

    async def _take(self, queue: Queue, message_id: str | None, *, replay: bool) -> int:
        assert self._connection is not None
        publisher = await self._connection.channel(publisher_confirms=True)
        done = 0
        for message in await self._each(queue):
            if message_id is not None and _identity(message) != message_id:
                await message.nack(requeue=True)
                continue
            if replay:
                headers = {
                    k: v for k, v in (message.headers or {}).items() if not k.startswith("x-")
                }
                schema = (message.headers or {}).get("x-schema")
                if schema is not None:
                    headers["x-schema"] = schema
                await publisher.default_exchange.publish(
                    aio_pika.Message(
                        message.body,
                        content_type=message.content_type,
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        correlation_id=message.correlation_id,
                        message_id=message.message_id,
                        headers=headers,
                    ),
                    routing_key=f"{self.namespace}.{queue}",
                    mandatory=True,
                )
            await message.ack()
            done += 1
        await publisher.close()
        return done
