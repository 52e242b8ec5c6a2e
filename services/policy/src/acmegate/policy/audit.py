"""The lookup audit (``policy.lookups``): every question an order put to a signal source.

One INSERT per order whatever the number of lookups (``unnest`` of parallel arrays), so the
audit costs one round trip on the hot path and nothing when no source was consulted. An
approval under Revoke On Failure adds its watch (watch.py) to the same statement, as a second
data-modifying CTE: still one round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from acmegate.common.group_commit import GroupCommit
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


@dataclass
class LookupAudit:
    """Writes the audit with group commit (acmegate.common.group_commit): concurrent orders
    share a round trip, and each returns once its own rows are committed."""

    pool: asyncpg.Pool
    _plain: GroupCommit | None = None
    _watched: GroupCommit | None = None

    def __post_init__(self) -> None:
        self._plain = GroupCommit(self.pool, _INSERT)
        self._watched = GroupCommit(self.pool, _INSERT_AND_WATCH)

    async def record(
        self,
        *,
        at: datetime,
        order_id: str | None,
        correlation_id: str,
        events: Sequence[LookupEvent],
        watch: Watch | None = None,
        recheck_after: timedelta = timedelta(hours=1),
    ) -> None:
        """:func:`record_lookups`, batched."""
        if not events:
            return
        assert self._plain is not None and self._watched is not None
        audit = _audit_params(at, order_id, correlation_id, events)
        if watch is None:
            await self._plain.write(*audit)
        else:
            await self._watched.write(*audit, *_watch_params(watch, at + recheck_after))


def _audit_params(
    at: datetime, order_id: str | None, correlation_id: str, events: Sequence[LookupEvent]
) -> tuple[object, ...]:
    return (
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


def _watch_params(watch: Watch, recheck_at: datetime) -> tuple[object, ...]:
    return (
        watch.lookup_policy,
        watch.identity_kind,
        watch.identity,
        watch.device_serial,
        recheck_at,
    )


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
    audit = _audit_params(at, order_id, correlation_id, events)
    if watch is None:
        await pool.execute(_INSERT, *audit)
        return
    await pool.execute(_INSERT_AND_WATCH, *audit, *_watch_params(watch, at + recheck_after))
