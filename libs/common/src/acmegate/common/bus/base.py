"""The bus interface that both the AMQP client and its in-process twin implement.

Delivery semantics (the same for both, checked by one contract test suite):

- at least once: a message is acknowledged only after its handler returned, so a handler
  publishes what follows (awaiting the broker's confirm) and commits its database work before
  returning; a crash before that means redelivery, hence every handler is idempotent;
- a handler that raises :class:`Reject`, or a body that does not decode, dead-letters the message
  at once (poison: retrying cannot help);
- an exception that means a dependency is unreachable
  (:func:`acmegate.common.outages.unavailable_dependency`) runs the handler again on the same
  delivery after a short backoff (``bus/outages.py``), never counting towards
  ``max_deliveries``, until the dependency is back;
- any other exception redelivers the message after a backoff, and dead-letters it once it has
  been delivered ``max_deliveries`` times;
- :meth:`Bus.broadcast` is a transient fan-out to every live subscriber (no persistence, no
  retry): it only wakes up waiters, correctness never depends on it;
- :meth:`Bus.request` / :meth:`Bus.serve` are request/reply for interactive operations (the
  admin API asking the signer or the policy service): transient, at most once, answered by one
  server replica within the timeout or failed with :class:`RpcUnavailable`. A handler's
  :class:`~acmegate.common.errors.AcmeError` travels back and is raised again at the caller.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from acmegate.common.bus.codec import Encoded, Message


class Queue(enum.StrEnum):
    """Work queues; the bus prefixes each with its namespace."""

    CHALLENGE_VERIFY = "attestation.challenge"
    # http-01, dns-01, tls-alpn-01: network validations, slow and I/O-bound (own consumer).
    CHALLENGE_VALIDATE = "attestation.validate"
    FINALIZE_ATTESTATION = "attestation.finalize"
    FINALIZE_POLICY = "policy.finalize"
    FINALIZE_SIGNER = "signer.finalize"
    SIGNER_REVOKE = "signer.revoke"
    FRONTEND_RESULTS = "frontend.results"


class RpcQueue(enum.StrEnum):
    """Request/reply queues of the services that answer interactive requests."""

    SIGNER = "signer.rpc"
    POLICY = "policy.rpc"


class RpcUnavailable(Exception):
    """No server answered the request in time (service down or overloaded)."""


class Reject(Exception):
    """Raised by a handler for a message that can never succeed: dead-letter it now."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """What a handler learns about the delivery besides the message itself."""

    queue: Queue
    delivery_count: int  # 1 on first delivery
    redelivered: bool


Handler = Callable[[Message, Delivery], Awaitable[None]]
BroadcastHandler = Callable[[Message], Awaitable[None]]
RpcHandler = Callable[[Message], Awaitable[Message]]


class Bus(Protocol):
    """Publish/consume typed messages with the semantics described in this module."""

    async def start(self) -> None:
        """Connect and declare the topology (idempotent, safe from many replicas)."""

    async def close(self) -> None:
        """Stop consuming, let running handlers finish, disconnect."""

    async def publish(self, queue: Queue, message: Message | Encoded) -> None:
        """Persist ``message`` on ``queue``; returns once the broker confirmed it. An
        :class:`~acmegate.common.bus.codec.Encoded` message is published as it is."""

    async def consume(self, queue: Queue, handler: Handler, *, prefetch: int = 32) -> None:
        """Start delivering ``queue`` to ``handler``, at most ``prefetch`` at a time."""

    async def broadcast(self, message: Message) -> None:
        """Fan ``message`` out to every subscriber, best effort."""

    async def subscribe(self, handler: BroadcastHandler) -> None:
        """Receive broadcasts from now on."""

    def ready(self) -> bool:
        """Connected and able to publish (for readiness probes)."""

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` each time the connection is back after a loss."""

    async def request(self, queue: RpcQueue, message: Message, *, timeout: float = 10.0) -> Message:
        """Send ``message`` to one server of ``queue`` and return its reply."""

    async def serve(self, queue: RpcQueue, handler: RpcHandler) -> None:
        """Answer requests on ``queue`` with ``handler`` from now on."""


def retry_backoff(delivery_count: int) -> float:
    """Seconds to wait before redelivering after a failed delivery (capped exponential)."""
    return float(min(0.1 * 2 ** max(delivery_count - 1, 0), 5.0))
