"""The in-process twin of the AMQP bus, for ``acmegate standalone`` and service tests.

Messages are encoded to JSON and decoded again on delivery, exactly as on RabbitMQ, so a
message that would not survive the wire does not survive here either.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec
import structlog

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


@dataclass
class _Envelope:
    body: bytes
    deliveries: int = 0
    # The trace context of the publisher, as AMQP headers would carry it (tracing on only).
    headers: dict[str, str] | None = None


@dataclass
class InProcessBus:
    """Same interface and delivery semantics as :class:`acmegate.common.bus.amqp.AmqpBus`."""

    max_deliveries: int = 10
    outage_retry_limit: float = 300.0
    _queues: dict[Queue, asyncio.Queue[_Envelope]] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _subscribers: list[BroadcastHandler] = field(default_factory=list)
    _servers: dict[RpcQueue, list[RpcHandler]] = field(default_factory=dict)
    _next_server: int = 0
    dead_letters: dict[Queue, list[bytes]] = field(default_factory=lambda: defaultdict(list))
    _closing: bool = False

    def _queue(self, queue: Queue) -> asyncio.Queue[_Envelope]:
        if queue not in self._queues:
            self._queues[queue] = asyncio.Queue()
        return self._queues[queue]

    async def start(self) -> None:
        for queue in Queue:
            self._queue(queue)

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def publish(self, queue: Queue, message: codec.Message | codec.Encoded) -> None:
        body = message.body if isinstance(message, codec.Encoded) else codec.encode(message)
        self._queue(queue).put_nowait(_Envelope(body, headers=tracing.trace_headers()))
        metrics.QUEUES[queue].published.inc()

    async def consume(self, queue: Queue, handler: Handler, *, prefetch: int = 32) -> None:
        handler = observed(queue, handler, max_deliveries=self.max_deliveries)
        for _ in range(prefetch):
            self._tasks.append(asyncio.create_task(self._worker(queue, handler)))

    async def broadcast(self, message: codec.Message) -> None:
        body = codec.encode(message)
        for subscriber in list(self._subscribers):
            self._tasks.append(asyncio.create_task(self._notify(subscriber, body)))

    async def subscribe(self, handler: BroadcastHandler) -> None:
        self._subscribers.append(handler)

    async def _notify(self, subscriber: BroadcastHandler, body: bytes) -> None:
        try:
            await subscriber(codec.decode(body))
        except Exception:
            log.exception("broadcast handler failed")

    def ready(self) -> bool:
        return not self._closing

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        """Nothing to reconnect: an in-process bus is never lost."""

    async def serve(self, queue: RpcQueue, handler: RpcHandler) -> None:
        self._servers.setdefault(queue, []).append(handler)

    async def request(
        self, queue: RpcQueue, message: codec.Message, *, timeout: float = 10.0
    ) -> codec.Message:
        servers = self._servers.get(queue)
        if not servers:
            raise RpcUnavailable(f"no {queue} server is running")
        self._next_server += 1
        handler = servers[self._next_server % len(servers)]
        # Through JSON both ways, as on the broker.
        request = codec.decode(codec.encode(message))
        try:
            reply = await asyncio.wait_for(rpc.answer(handler, request), timeout)
        except TimeoutError as exc:
            raise RpcUnavailable(f"{queue} did not answer within {timeout:g}s") from exc
        return rpc.unwrap(codec.decode(codec.encode(reply)))

    def depth(self, queue: Queue) -> int:
        """Messages waiting on ``queue`` (for tests)."""
        return self._queue(queue).qsize()

    async def _worker(self, queue: Queue, handler: Handler) -> None:
        source = self._queue(queue)
        while True:
            envelope = await source.get()
            envelope.deliveries += 1
            if envelope.deliveries > 1:
                metrics.QUEUES[queue].redelivered.inc()
            try:
                message = codec.decode(envelope.body)
            except (msgspec.DecodeError, msgspec.ValidationError):
                log.error("undecodable message dead-lettered", queue=str(queue))
                metrics.QUEUES[queue].dead_undecodable.inc()
                self.dead_letters[queue].append(envelope.body)
                continue
            delivery = Delivery(queue, envelope.deliveries, envelope.deliveries > 1)
            try:
                with (
                    bind_correlation_id(getattr(message, "correlation_id", None)),
                    tracing.consumer_span(queue, envelope.headers),
                ):
                    await ride_outages(handler, message, delivery, limit=self.outage_retry_limit)
            except asyncio.CancelledError:
                # Shutting down mid-message: like a closed AMQP channel, it goes back.
                source.put_nowait(envelope)
                raise
            except Reject as exc:
                log.error("message rejected", queue=str(queue), reason=str(exc))
                self.dead_letters[queue].append(envelope.body)
            except Exception:
                log.exception("handler failed", queue=str(queue), deliveries=envelope.deliveries)
                if envelope.deliveries >= self.max_deliveries:
                    self.dead_letters[queue].append(envelope.body)
                else:
                    self._requeue_later(source, envelope)

    def _requeue_later(self, source: asyncio.Queue[_Envelope], envelope: _Envelope) -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(retry_backoff(envelope.deliveries), source.put_nowait, envelope)
