"""Retention of the ACME state (issue #8): what the sweeper purges, and after how long.

Without it every enrollment leaves an account, an order, an authorization, a challenge, a
certificate chain and an enrollment event behind for ever. Each kind has its period
(``retention.*``; ``null`` keeps it for ever):

- ``certificates``: a delivered chain, counted from the certificate's ``notAfter``;
- ``orders``: an order with its authorization and challenge, counted from the order's
  expiry, unless it is in flight or its certificate's chain is still kept;
- ``accounts``: an account that holds no order, counted from its creation;
- ``enrollment_events``: counted from the event;
- spent rate-limit rows (``acme.rate_limits``) go as soon as their budget is full again.

The policy service purges its own lookup audit (``policy.lookups``); a schema belongs to its
service. The statements and what they never touch: ``db/retention.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import asyncpg
import structlog

from acmegate.common import metrics
from acmegate.common.config import seconds
from acmegate.common.config.model import RetentionConfig
from acmegate.common.purge import drain
from acmegate.frontend.db import retention as retention_db

log = structlog.get_logger(__name__)

Purge = Callable[[asyncpg.Pool, datetime, int], Awaitable[int]]


def _period(value: int | str | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=seconds(value))


@dataclass(frozen=True, slots=True)
class Purged:
    """How many rows one pass deleted, by kind."""

    certificates: int = 0
    orders: int = 0
    accounts: int = 0
    enrollment_events: int = 0
    rate_limits: int = 0


class Retention:
    """The retention step of one frontend replica (run by the sweeper)."""

    def __init__(self, pool: asyncpg.Pool, config: RetentionConfig) -> None:
        self._pool = pool
        self.batch = config.batch
        self.interval = timedelta(seconds=seconds(config.interval))
        # In dependency order: a certificate's chain before its order, orders before the
        # accounts they kept.
        self._steps: list[tuple[str, Purge, timedelta | None]] = [
            ("certificates", retention_db.purge_certificates, _period(config.certificates)),
            ("orders", retention_db.purge_orders, _period(config.orders)),
            ("accounts", retention_db.purge_accounts, _period(config.accounts)),
            (
                "enrollment_events",
                retention_db.purge_enrollment_events,
                _period(config.enrollment_events),
            ),
            ("rate_limits", retention_db.purge_rate_limits, timedelta(0)),
        ]

    async def purge(self, now: datetime) -> Purged:
        """One pass as of ``now``: every kind, in bounded batches."""
        deleted: dict[str, int] = {}
        for kind, purge, period in self._steps:
            if period is None:
                continue
            deleted[kind] = await drain(partial(purge, self._pool, now - period), self.batch)
            metrics.retention_purged(kind).inc(deleted[kind])
        purged = Purged(**deleted)
        if any(deleted.values()):
            log.info("retention purged finished records", **deleted)
        return purged
