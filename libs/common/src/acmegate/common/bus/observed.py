"""Metrics for the handlers of both buses: one wrapper, applied when a queue is consumed.

The wrapper times each delivery's handler and counts its outcome the way the bus will act on
it (``base.py`` describes the semantics): acknowledged, redelivered after a backoff, or
dead-lettered (rejected, or failed ``max_deliveries`` times). The buses themselves count
publishes, redeliveries and undecodable bodies, and open the consumer span.
"""

from __future__ import annotations

import time

from acmegate.common import metrics
from acmegate.common.bus.base import Delivery, Handler, Queue, Reject
from acmegate.common.bus.codec import Message


def observed(queue: Queue, handler: Handler, *, max_deliveries: int) -> Handler:
    """``handler`` with its duration and outcome recorded in ``/metrics``."""
    counters = metrics.QUEUES[queue]

    async def run(message: Message, delivery: Delivery) -> None:
        started = time.perf_counter()
        try:
            await handler(message, delivery)
        except Reject:
            counters.dead_rejected.inc()
            raise
        except Exception:
            if delivery.delivery_count >= max_deliveries:
                counters.dead_max_deliveries.inc()
            else:
                counters.retried.inc()
            raise
        else:
            counters.acked.inc()
        finally:
            counters.handler.observe(time.perf_counter() - started)

    return run
