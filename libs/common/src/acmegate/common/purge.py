"""Deleting old rows in bounded batches (retention, issue #8), shared by the services that
purge their own schema (the frontend's sweeper, the policy service).

One statement deletes at most ``batch`` rows, so no statement holds many locks or runs long
next to the request traffic; a pass repeats it while batches come back full, up to
``MAX_BATCHES`` per pass, and the rest waits for the next pass.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

# At 1000 rows a batch, 100 batches a pass every minute is ~1,600 rows/s per kind per
# replica: well above what 250 enrollments/s leave behind.
MAX_BATCHES = 100


async def drain(step: Callable[[int], Awaitable[int]], batch: int) -> int:
    """Call ``step(batch)`` (which deletes up to ``batch`` rows and returns how many) until a
    batch is short or ``MAX_BATCHES`` ran; the total deleted."""
    total = 0
    for _ in range(MAX_BATCHES):
        deleted = await step(batch)
        total += deleted
        if deleted < batch:
            break
    return total
