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
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import aiormq.exceptions
import msgspec
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)

from acmegate.common import metrics, tracing
from acmegate.common.bus import codec, rpc
from acmegate.common.bus.base import (
    BroadcastHandler,
    Delivery,
    Handler,
    Queue,
    Reject,
    RpcHandler,
    RpcQueue,
    RpcUnavailable,
    retry_backoff,
)
from acmegate.common.bus.observed import observed
from acmegate.common.bus.outages import ride_outages
from acmegate.common.logging import bind_correlation_id

log = structlog.get_logger(__name__)


def _still_ours(incoming: AbstractIncomingMessage) -> bool:
    """Whether ``incoming`` can still be acknowledged: a closed consumer channel has given it
    back to the broker (``incoming.channel`` raises then)."""
    try:
        return not incoming.channel.is_closed
    except aiormq.exceptions.ChannelInvalidStateError:
        return False


@dataclass
class AmqpBus:
    url: str
    namespace: str = "acmegate"
    max_deliveries: int = 10
    # How long one delivery is run again in place while a dependency is down (bus/outages.py);
    # past it the failure is redelivered and counts. The order's budget bounds it anyway.
    outage_retry_limit: float = 300.0
    _connection: AbstractRobustConnection | None = None
    _publish_channel: AbstractChannel | None = None
    _notify_exchange: AbstractExchange | None = None
    _consumers: list[tuple[AbstractQueue, str]] = field(default_factory=list)
    _inflight: set[asyncio.Task[Any]] = field(default_factory=set)
    _reply_queue: str | None = None
    _replies: dict[str, asyncio.Future[codec.Message]] = field(default_factory=dict)
    _reply_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # When the connection was lost (monotonic), while aio-pika reconnects; None when up.
    _lost_at: float | None = None
    _closing: bool = False
    _on_reconnect: list[Callable[[], None]] = field(default_factory=list)

    def name(self, queue: Queue) -> str:
        return f"{self.namespace}.{queue}"

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(
            self.url,
            client_properties={"connection_name": f"acmegate/{self.namespace}"},
            # Try each second (aio-pika's default is 5 s): work resumes about a second after
            # the broker's return.
            reconnect_interval=1.0,
        )
        self._connection.close_callbacks.add(self._lost)
        self._connection.reconnect_callbacks.add(self._restored)
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

    def _lost(self, _sender: object, exc: BaseException | None = None) -> None:
        if self._closing or self._lost_at is not None:
            return
        self._lost_at = time.monotonic()
        log.warning(
            "message broker connection lost; reconnecting",
            namespace=self.namespace,
            error=f"{type(exc).__name__}: {exc}" if exc is not None else None,
        )

    def _restored(self, _sender: object) -> None:
        lost_at, self._lost_at = self._lost_at, None
        log.info(
            "message broker connection restored",
            namespace=self.namespace,
            outage_seconds=round(time.monotonic() - lost_at, 1) if lost_at is not None else None,
        )
        for callback in self._on_reconnect:
            callback()

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` each time the connection is back after a loss (e.g. to publish
        at once what waited for the broker)."""
        self._on_reconnect.append(callback)

    async def close(self) -> None:
        self._closing = True
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
        # aio-pika's robust connection is not "closed" while it reconnects: ``connected`` is
        # the event it clears on loss and sets once the channels are restored.
        connection, channel = self._connection, self._publish_channel
        return (
            connection is not None
            and not connection.is_closed
            and connection.connected.is_set()
            and channel is not None
            and not channel.is_closed
        )

    async def publish(self, queue: Queue, message: codec.Message | codec.Encoded) -> None:
        assert self._publish_channel is not None, "bus not started"
        if not isinstance(message, codec.Encoded):
            message = codec.encoded(message)
        headers: dict[str, Any] = {"x-schema": message.schema}
        tracing.inject(headers)
        await self._publish_channel.default_exchange.publish(
            aio_pika.Message(
                message.body,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                correlation_id=message.correlation_id,
                headers=headers,
            ),
            routing_key=self.name(queue),
            mandatory=True,
        )
        metrics.QUEUES[queue].published.inc()

    async def consume(self, queue: Queue, handler: Handler, *, prefetch: int = 32) -> None:
        assert self._connection is not None, "bus not started"
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        amqp_queue = await channel.get_queue(self.name(queue), ensure=True)
        handler = observed(queue, handler, max_deliveries=self.max_deliveries)

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
        if count > 1:
            metrics.QUEUES[queue].redelivered.inc()
        try:
            message = codec.decode(incoming.body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.error("undecodable message dead-lettered", queue=str(queue), error=str(exc))
            metrics.QUEUES[queue].dead_undecodable.inc()
            await incoming.reject(requeue=False)
            return
        with (
            bind_correlation_id(getattr(message, "correlation_id", None)),
            tracing.consumer_span(queue, incoming.headers),
        ):
            try:
                await ride_outages(
                    handler,
                    message,
                    Delivery(queue, count, incoming.redelivered or count > 1),
                    limit=self.outage_retry_limit,
                    alive=lambda: _still_ours(incoming),
                )
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

    async def broadcast(self, message: codec.Message) -> None:
        assert self._notify_exchange is not None, "bus not started"
        await self._notify_exchange.publish(
            aio_pika.Message(
                codec.encode(message), delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT
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
                await handler(codec.decode(incoming.body))
            except Exception:
                log.exception("broadcast handler failed")

        # Broadcasts are best-effort wake-ups: no acknowledgement to pay for.
        tag = await own.consume(on_message, no_ack=True)
        self._consumers.append((own, tag))

    # --- request/reply ------------------------------------------------------------------------

    async def serve(self, queue: RpcQueue, handler: RpcHandler) -> None:
        assert self._connection is not None and self._publish_channel is not None
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=16)
        # Requests are transient and expire (per-message TTL = the caller's timeout).
        amqp_queue = await channel.declare_queue(f"{self.namespace}.{queue}", durable=True)
        publish = self._publish_channel.default_exchange

        async def on_request(incoming: AbstractIncomingMessage) -> None:
            try:
                request = codec.decode(incoming.body)
            except (msgspec.DecodeError, msgspec.ValidationError):
                log.error("undecodable request dropped", queue=str(queue))
                return
            if not incoming.reply_to:
                return
            with bind_correlation_id(getattr(request, "correlation_id", None)):
                reply = await rpc.answer(handler, request)
            await publish.publish(
                aio_pika.Message(
                    codec.encode(reply),
                    correlation_id=incoming.correlation_id,
                    delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT,
                ),
                routing_key=incoming.reply_to,
                mandatory=False,
            )

        tag = await amqp_queue.consume(on_request, no_ack=True)
        self._consumers.append((amqp_queue, tag))

    async def request(
        self, queue: RpcQueue, message: codec.Message, *, timeout: float = 10.0
    ) -> codec.Message:
        assert self._publish_channel is not None, "bus not started"
        reply_queue = await self._ensure_reply_queue()
        correlation = secrets.token_hex(12)
        future: asyncio.Future[codec.Message] = asyncio.get_running_loop().create_future()
        self._replies[correlation] = future
        try:
            try:
                await self._publish_channel.default_exchange.publish(
                    aio_pika.Message(
                        codec.encode(message),
                        correlation_id=correlation,
                        reply_to=reply_queue,
                        expiration=timeout,
                        delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT,
                    ),
                    routing_key=f"{self.namespace}.{queue}",
                    mandatory=True,
                )
            except aio_pika.exceptions.DeliveryError as exc:
                raise RpcUnavailable(f"no {queue} server is running") from exc
            try:
                reply = await asyncio.wait_for(future, timeout)
            except TimeoutError as exc:
                raise RpcUnavailable(f"{queue} did not answer within {timeout:g}s") from exc
        finally:
            self._replies.pop(correlation, None)
        return rpc.unwrap(reply)

    async def _ensure_reply_queue(self) -> str:
        async with self._reply_lock:
            if self._reply_queue is None:
                assert self._connection is not None
                channel = await self._connection.channel()
                own = await channel.declare_queue(exclusive=True, auto_delete=True)

                async def on_reply(incoming: AbstractIncomingMessage) -> None:
                    future = self._replies.get(incoming.correlation_id or "")
                    if future is None or future.done():
                        return
                    try:
                        future.set_result(codec.decode(incoming.body))
                    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                        future.set_exception(exc)

                tag = await own.consume(on_reply, no_ack=True)
                self._consumers.append((own, tag))
                self._reply_queue = own.name
            return self._reply_queue
