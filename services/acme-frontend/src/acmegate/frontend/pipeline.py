"""Handing work to the pipeline and waiting briefly for its answer (docs/design.md "Fence and
outbox").

The fence-and-outbox statement commits first (it is also the request's read of the object:
one statement per request), then the message is published with a broker confirm. If
publishing fails the work is not lost: its outbox row makes the sweeper publish it again.
The caller then waits up to a few seconds for the result; past that the client sees
``processing`` and polls.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog

from acmegate.common.bus import Queue, codec
from acmegate.common.outages import unavailable_dependency
from acmegate.frontend.context import Frontend
from acmegate.frontend.db import work as work_db
from acmegate.frontend.waiters import Woken

log = structlog.get_logger(__name__)
T = TypeVar("T")

Fence = Callable[[work_db.OutboxTimes], Awaitable[work_db.Fenced[T]]]


async def submit_and_wait(
    frontend: Frontend,
    *,
    key: str,
    queue: Queue,
    fence: Fence[T],
    wait: float,
) -> tuple[T, Woken | None]:
    """Fence (the statement also reads: what it read comes back first), publish and wait.
    None: the fence was not taken (not pending/ready, or someone else started this work)."""
    timing = frontend.timing
    with frontend.waiters.expect(key) as done:
        now = frontend.clock.now()
        fenced = await fence(
            work_db.OutboxTimes(
                now=now,
                deadline=now + timing.processing_budget,
                retry_at=now + timing.republish_after,
            )
        )
        if fenced.body is None:
            return fenced.read, None
        try:
            # The outbox row stores these bytes and the bus publishes them as they are.
            await frontend.bus.publish(queue, codec.stored(fenced.body))
        except Exception as exc:
            # The outbox row stays; the sweeper publishes it again (docs/design.md "Results and the
            # sweeper"), at once when the broker is back (the bus logs its loss and return).
            if unavailable_dependency(exc) is None:
                log.warning("publish failed; the sweeper will retry", key=key, exc_info=True)
            await work_db.release(frontend.pool, [key], now=now)
            return fenced.read, Woken(False)
        return fenced.read, await frontend.waiters.wait(done, wait)
