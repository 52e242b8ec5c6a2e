"""The RabbitMQ bus (aio-pika): durable quorum queues, persistent messages, publisher confirms,
manual acknowledgement after the handler returned, and a dead-letter queue per work queue.

Topology, declared identically by every service at start (declarations are idempotent):

- ``<ns>.<queue>``: quorum queue, ``x-delivery-limit`` as a safety net, dead-lettering through
  the direct exchange ``<ns>.dead-letter`` into ``<ns>.<queue>.dead``;
- ``<ns>.notify``: fan-out exchange for transient wake-up broadcasts, each subscriber with its
  own exclusive, auto-deleted queue.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import msgspec
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from acmegate.common import messages
from acmegate.common.bus.base import (
    BroadcastHandler,
    Delivery,
    Handler,
    Queue,
    Reject,
    retry_backoff,
)
from acmegate.common.logging import bind_correlation_id

log = structlog.get_logger(__name__)


@dataclass
class AmqpBus:
    url: str
    namespace: str = "acmegate"
    max_deliveries: int = 10
    _connection: AbstractRobustConnection | None = None
    _publish_channel: AbstractChannel | None = None
    _notify_exchange: AbstractExchange | None = None
    _consumers: list[tuple[AbstractQueue, str]] = field(default_factory=list)
    _inflight: set[asyncio.Task[Any]] = field(default_factory=set)

    def name(self, queue: Queue) -> str:
        return f"{self.namespace}.{queue}"

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(
            self.url, client_properties={"connection_name": f"acmegate/{self.namespace}"}
        )
        channel = await self._connection.channel(publisher_confirms=True)
        self._publish_channel = channel
        dead_letter = await channel.declare_exchange(
            f"{self.namespace}.dead-letter", aio_pika.ExchangeType.DIRECT, durable=True
        )
        for queue in Queue:
            name = self.name(queue)
            await channel.declare_queue(
                name,
                durable=True,
                arguments={
                    "x-queue-type": "quorum",
                    # Our own count dead-letters first; this only catches a crash loop.
                    "x-delivery-limit": self.max_deliveries + 5,
                    "x-dead-letter-exchange": f"{self.namespace}.dead-letter",
                    "x-dead-letter-routing-key": name,
                },
            )
            dead = await channel.declare_queue(
                f"{name}.dead", durable=True, arguments={"x-queue-type": "quorum"}
            )
            await dead.bind(dead_letter, routing_key=name)
        self._notify_exchange = await channel.declare_exchange(
            f"{self.namespace}.notify", aio_pika.ExchangeType.FANOUT, durable=True
        )

    async def close(self) -> None:
        for queue, tag in self._consumers:
            with contextlib.suppress(Exception):
                await queue.cancel(tag)
        self._consumers.clear()
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=10)
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    def ready(self) -> bool:
        return self._connection is not None and not self._connection.is_closed

    async def publish(self, queue: Queue, message: messages.Message) -> None:
        assert self._publish_channel is not None, "bus not started"
        body = messages.encode(message)
        await self._publish_channel.default_exchange.publish(
            aio_pika.Message(
                body,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                correlation_id=getattr(message, "correlation_id", None),
                headers={"x-schema": messages.schema_of(message)},
            ),
            routing_key=self.name(queue),
            mandatory=True,
        )

    async def consume(self, queue: Queue, handler: Handler, *, prefetch: int = 32) -> None:
        assert self._connection is not None, "bus not started"
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        amqp_queue = await channel.get_queue(self.name(queue), ensure=True)

        async def on_message(incoming: AbstractIncomingMessage) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._inflight.add(task)
            try:
                await self._deliver(queue, incoming, handler)
            finally:
                if task is not None:
                    self._inflight.discard(task)

        tag = await amqp_queue.consume(on_message)
        self._consumers.append((amqp_queue, tag))

    async def _deliver(
        self, queue: Queue, incoming: AbstractIncomingMessage, handler: Handler
    ) -> None:
        # Quorum queues count earlier deliveries in x-delivery-count (absent on the first).
        raw_count = (incoming.headers or {}).get("x-delivery-count", 0)
        count = (raw_count if isinstance(raw_count, int) else 0) + 1
        try:
            message = messages.decode(incoming.body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.error("undecodable message dead-lettered", queue=str(queue), error=str(exc))
            await incoming.reject(requeue=False)
            return
        with bind_correlation_id(getattr(message, "correlation_id", None)):
            try:
                await handler(message, Delivery(queue, count, incoming.redelivered or count > 1))
            except Reject as exc:
                log.error("message rejected", queue=str(queue), reason=str(exc))
                await incoming.reject(requeue=False)
            except Exception:
                log.exception("handler failed", queue=str(queue), deliveries=count)
                if count >= self.max_deliveries:
                    await incoming.reject(requeue=False)
                else:
                    await asyncio.sleep(retry_backoff(count))
                    await incoming.nack(requeue=True)
            else:
                await incoming.ack()

    async def broadcast(self, message: messages.Message) -> None:
        assert self._notify_exchange is not None, "bus not started"
        await self._notify_exchange.publish(
            aio_pika.Message(
                messages.encode(message), delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT
            ),
            routing_key="",
            mandatory=False,
        )

    async def subscribe(self, handler: BroadcastHandler) -> None:
        assert self._connection is not None, "bus not started"
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=256)
        exchange = await channel.get_exchange(f"{self.namespace}.notify")
        own = await channel.declare_queue(exclusive=True, auto_delete=True)
        await own.bind(exchange)

        async def on_message(incoming: AbstractIncomingMessage) -> None:
            try:
                await handler(messages.decode(incoming.body))
            except Exception:
                log.exception("broadcast handler failed")

        # Broadcasts are best-effort wake-ups: no acknowledgement to pay for.
        tag = await own.consume(on_message, no_ack=True)
        self._consumers.append((own, tag))
