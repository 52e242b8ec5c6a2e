"""Handing work to the pipeline and waiting briefly for its answer (DESIGN.md "The flow").

The fence-and-outbox statement commits first, then the message is published with a broker
confirm. If publishing fails the work is not lost: its outbox row makes the sweeper publish it
again. The caller then waits up to a few seconds for the result; past that the client sees
``processing`` and polls.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

import structlog

from acmegate.common import messages
from acmegate.common.bus import Queue
from acmegate.frontend.context import Frontend
from acmegate.frontend.waiters import Woken

log = structlog.get_logger(__name__)

Fence = Callable[[bytes, datetime], Awaitable[bool]]


async def submit_and_wait(
    frontend: Frontend,
    *,
    key: str,
    queue: Queue,
    message: messages.Message,
    fence: Fence,
    wait: float,
) -> Woken | None:
    """Fence, publish and wait. None: the fence failed (someone else started this work)."""
    body = messages.encode(message)
    with frontend.waiters.expect(key) as done:
        if not await fence(body, frontend.clock.now()):
            return None
        try:
            await frontend.bus.publish(queue, message)
        except Exception:
            # The outbox row stays; the sweeper publishes it again (DESIGN.md step 5).
            log.warning("publish failed; the sweeper will retry", key=key, exc_info=True)
            return Woken(False)
        return await frontend.waiters.wait(done, wait)
