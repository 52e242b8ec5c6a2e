"""The lookup audit (``policy.lookups``): every question an order put to a signal source.

One INSERT per order whatever the number of lookups (``unnest`` of parallel arrays), so the
audit costs one round trip on the hot path and nothing when no source was consulted. An
approval under Revoke On Failure adds its watch (watch.py) to the same statement, as a second
data-modifying CTE: still one round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg

from acmegate.policy.lookups import LookupEvent
from acmegate.policy.watch import WATCH_UPSERT, Watch

_INSERT = """
INSERT INTO policy.lookups
    (at, order_id, correlation_id, lookup_policy, source, identity_kind, identity, outcome,
     managed, detail)
SELECT $1, $2, $3, e.lookup_policy, e.source, e.identity_kind, e.identity, e.outcome,
       e.managed, e.detail
FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::boolean[],
            $10::text[])
     AS e(lookup_policy, source, identity_kind, identity, outcome, managed, detail)
"""


_INSERT_AND_WATCH = f"WITH audit AS ({_INSERT}) {WATCH_UPSERT}"


async def record_lookups(
    pool: asyncpg.Pool,
    *,
    at: datetime,
    order_id: str | None,
    correlation_id: str,
    events: Sequence[LookupEvent],
    watch: Watch | None = None,
    recheck_after: timedelta = timedelta(hours=1),
) -> None:
    """Append ``events`` to the audit (nothing to do when there are none); with ``watch``,
    record the approval for Revoke On Failure, first re-checked ``recheck_after`` from ``at``.
    """
    if not events:
        return
    audit = (
        at,
        order_id,
        correlation_id,
        [e.lookup_policy for e in events],
        [e.source for e in events],
        [e.kind for e in events],
        [e.identity for e in events],
        [e.outcome for e in events],
        [e.managed for e in events],
        [e.detail for e in events],
    )
    if watch is None:
        await pool.execute(_INSERT, *audit)
        return
    await pool.execute(
        _INSERT_AND_WATCH,
        *audit,
        watch.lookup_policy,
        watch.identity_kind,
        watch.identity,
        watch.device_serial,
        at + recheck_after,
    )


async def recent_lookups(
    pool: asyncpg.Pool, *, source: str, identity: str, limit: int = 20
) -> list[asyncpg.Record]:
    """The latest audit rows of one device at one source, newest first (for operators)."""
    return await pool.fetch(
        "SELECT at, order_id, lookup_policy, identity_kind, outcome, managed, detail "
        "FROM policy.lookups WHERE source = $1 AND identity = $2 ORDER BY at DESC LIMIT $3",
        source,
        identity,
        limit,
    )
