"""Deleting old rows in bounded batches (retention, issue #8), shared by the services that
purge their own schema (the frontend's sweeper, the policy service).

One statement deletes at most ``batch`` rows, so no statement holds many locks or runs long
next to the request traffic; a pass repeats it while batches come back full, up to
``MAX_BATCHES`` per pass, and the rest waits for the next pass. Rows are chosen ``FOR UPDATE
SKIP LOCKED``: replicas purging at once share the work, and a row a request holds is left for
the next pass.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

# At 1000 rows a batch, 100 batches a pass every minute is ~1,600 rows/s per kind per
# replica: well above what 250 enrollments/s leave behind.
MAX_BATCHES = 100


def oldest_first(
    table: str, column: str, *, key: tuple[str, ...] = ("id",), condition: str = ""
) -> str:
    """The statement deleting up to ``$2`` rows of ``table`` whose ``column`` is before
    ``$1``, oldest first, and ``condition`` (about alias ``t``) holds; it returns how many.
    Only fixed names are formatted in."""
    columns = ", ".join(key)
    return f"""
        WITH doomed AS (
            SELECT {columns} FROM {table} t WHERE t.{column} < $1 {condition}
            ORDER BY t.{column} LIMIT $2 FOR UPDATE OF t SKIP LOCKED
        ), gone AS (
            DELETE FROM {table} WHERE ({columns}) IN (SELECT {columns} FROM doomed) RETURNING 1
        )
        SELECT count(*) FROM gone
    """  # noqa: S608


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
