"""Retention of the lookup audit (issue #8): ``policy.lookups`` rows older than
``retention.lookups`` are deleted in bounded batches, oldest first, every
``retention.interval`` on each replica (``FOR UPDATE SKIP LOCKED``: replicas share the work).

The audit explains past decisions; nothing depends on old rows: the Revoke On Failure watches
live in ``policy.watched_devices`` and the certificates' enrollment records in ``pki``.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from functools import partial

import asyncpg
import structlog

from acmegate.common import metrics
from acmegate.common.config import seconds
from acmegate.common.purge import drain, oldest_first
from acmegate.common.runtime import Runtime

log = structlog.get_logger(__name__)

_PURGE = oldest_first("policy.lookups", "at")


async def _purge_batch(pool: asyncpg.Pool, cutoff: datetime, batch: int) -> int:
    deleted: int = await pool.fetchval(_PURGE, cutoff, batch)
    return deleted


class LookupRetention:
    """The periodic purge of one policy service replica."""

    def __init__(self, runtime: Runtime, period: int | str) -> None:
        config = runtime.config.retention
        self._runtime = runtime
        self._pool = runtime.require_pool()
        self._period = timedelta(seconds=seconds(period))
        self._interval = float(seconds(config.interval))
        self._batch = config.batch
        self._task: asyncio.Task[None] | None = None

    async def purge(self, now: datetime) -> int:
        """Delete the audit rows older than the period as of ``now``; how many went."""
        deleted = await drain(partial(_purge_batch, self._pool, now - self._period), self._batch)
        metrics.retention_purged("lookups").inc(deleted)
        if deleted:
            log.info("retention purged lookup audit rows", lookups=deleted)
        return deleted

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="policy-retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.purge(self._runtime.clock.now())
            except (asyncpg.PostgresError, OSError):
                log.warning("lookup audit purge failed; will retry", exc_info=True)
            await asyncio.sleep(self._interval)
