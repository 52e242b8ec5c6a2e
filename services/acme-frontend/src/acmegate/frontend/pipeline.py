"""Handing work to the pipeline and waiting briefly for its answer (docs/design.md "Fence and
outbox").

The fence-and-outbox statement commits first, then the message is published with a broker
confirm. If publishing fails the work is not lost: its outbox row makes the sweeper publish it
again. The caller then waits up to a few seconds for the result; past that the client sees
``processing`` and polls.
"""

from __future__ import annotations

import structlog

from acmegate.common.bus import Queue, codec
from acmegate.common.outages import unavailable_dependency
from acmegate.frontend.context import Frontend
from acmegate.frontend.db import work as work_db
from acmegate.frontend.waiters import Woken

log = structlog.get_logger(__name__)

# The fence of each kind of work: its compare-and-set into `processing` with the outbox row.
_FENCES = {"challenge": work_db.begin_challenge, "order": work_db.begin_finalize}


async def submit_and_wait(
    frontend: Frontend,
    *,
    kind: work_db.WorkKind,
    subject_id: str,
    queue: Queue,
    message: codec.Message,
    wait: float,
) -> Woken | None:
    """Fence, publish and wait. None: the fence failed (someone else started this work)."""
    key = work_db.work_key(kind, subject_id)
    # Encoded once: the outbox row stores these bytes and the bus publishes them as they are.
    encoded = codec.encoded(message)
    timing = frontend.timing
    with frontend.waiters.expect(key) as done:
        now = frontend.clock.now()
        started = await _FENCES[kind](
            frontend.pool,
            subject_id,
            queue=str(queue),
            body=encoded.body,
            now=now,
            deadline=now + timing.processing_budget,
            retry_at=now + timing.republish_after,
        )
        if not started:
            return None
        try:
            await frontend.bus.publish(queue, encoded)
        except Exception as exc:
            # The outbox row stays; the sweeper publishes it again (docs/design.md "Results and the
            # sweeper"), at once when the broker is back (the bus logs its loss and return).
            if unavailable_dependency(exc) is None:
                log.warning("publish failed; the sweeper will retry", key=key, exc_info=True)
            await work_db.release(frontend.pool, [key], now=now)
            return Woken(False)
        return await frontend.waiters.wait(done, wait)
