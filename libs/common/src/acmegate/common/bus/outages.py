"""Riding out a dependency outage inside one delivery (both buses; docs/operations.md
"Dependency outages").

A handler that fails because PostgreSQL or the broker is unavailable is run again on the same
delivery after a short backoff, instead of being nacked: a nack raises the delivery count, and a
ten-second database outage would otherwise burn ``max_deliveries`` in under a second and
dead-letter messages that were fine. Handlers are idempotent (``base.py``), so running one again
is safe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from acmegate.common import metrics
from acmegate.common.bus.base import Delivery, Handler, Reject
from acmegate.common.bus.codec import Message
from acmegate.common.outages import unavailable_dependency

log = structlog.get_logger(__name__)


def outage_backoff(attempt: int) -> float:
    """Seconds before running a handler again while a dependency is down: capped low so that
    work resumes within a couple of seconds of the dependency's return."""
    return float(min(0.25 * 2 ** max(attempt - 1, 0), 2.0))


async def ride_outages(
    handler: Handler,
    message: Message,
    delivery: Delivery,
    *,
    limit: float,
    alive: Callable[[], bool] = lambda: True,
) -> None:
    """Run ``handler``; on an outage error run it again until it succeeds, fails otherwise, the
    delivery is no longer ours (``alive``), or ``limit`` seconds have passed; then the error
    takes the usual path (redelivery, counted)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    attempt = 0
    while True:
        try:
            await handler(message, delivery)
            return
        except Reject:
            raise
        except Exception as exc:
            dependency = unavailable_dependency(exc)
            if dependency is None or loop.time() - started > limit or not alive():
                raise
            attempt += 1
            if attempt == 1:
                log.warning(
                    "dependency unavailable; running the message again once it is back",
                    queue=str(delivery.queue),
                    dependency=dependency,
                    error=type(exc).__name__,
                )
            metrics.QUEUES[delivery.queue].outage_retries.inc()
            await asyncio.sleep(outage_backoff(attempt))
