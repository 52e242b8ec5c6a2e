"""The sweeper: no challenge or order stays ``processing`` forever (docs/design.md "Results and the
sweeper").

Every ``acme.sweep_interval`` each replica leases late outbox rows (``SKIP LOCKED``: replicas
share the work without overlap). A row within its deadline is published again — every stage is
idempotent per challenge/order, so a duplicate costs only work. A row past its deadline fails
its subject with ``serverInternal`` (Boulder's ``failOrder``). The sweeper also forgets expired
nonces, keeps the nonce key in step (``nonces.py``), every ``retention.interval`` purges
finished records (``retention.py``), and reports the outbox backlog in ``/metrics`` (how many
rows, how old the oldest).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

import asyncpg
import structlog

from acmegate.common import metrics
from acmegate.common.bus import Queue, codec
from acmegate.common.errors import ErrorKind
from acmegate.common.messages import Problem
from acmegate.common.outages import OutageLog, unavailable_dependency
from acmegate.frontend.context import Frontend
from acmegate.frontend.db import work as work_db
from acmegate.frontend.retention import Retention

log = structlog.get_logger(__name__)

TIMEOUT_PROBLEM = Problem(
    kind=ErrorKind.SERVER_INTERNAL,
    detail="the gateway could not complete this request in time; please try again",
)


class Sweeper:
    def __init__(self, frontend: Frontend) -> None:
        self.frontend = frontend
        self._task: asyncio.Task[None] | None = None
        self.retention = Retention(frontend.pool, frontend.config.retention)
        self._next_purge: datetime | None = None
        # Set when the broker is back: sweep at once instead of at the next interval.
        self._wake = asyncio.Event()
        self._outages = OutageLog("sweeper")

    def start(self) -> None:
        self.frontend.bus.on_reconnect(self._wake.set)
        self._task = asyncio.create_task(self._run(), name="acme-sweeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.frontend.timing.sweep_interval)
            self._wake.clear()
            try:
                await self.sweep_once()
            except Exception as exc:
                dependency = unavailable_dependency(exc)
                if dependency is None:
                    log.warning("sweep failed; will retry", exc_info=True)
                else:
                    # One line per outage, not a traceback per pass (common/outages.py).
                    self._outages.down(dependency, exc)
            else:
                self._outages.up()

    async def sweep_once(self) -> int:
        """One pass; returns how many outbox rows it handled."""
        frontend = self.frontend
        now = frontend.clock.now()
        await frontend.nonces.refresh(frontend.pool)
        await frontend.nonces.purge(frontend.pool, now)
        rows = await work_db.claim_due(
            frontend.pool, now=now, republish_after=frontend.timing.republish_after
        )
        unpublished: list[str] = []
        for row in rows:
            if row.deadline <= now:
                await self._fail(row)
            elif unpublished or not frontend.bus.ready():
                unpublished.append(row.id)
            elif not await self._republish(row):
                unpublished.append(row.id)
        if unpublished:
            # Not attempts: they go out as soon as the broker is back (on_reconnect above).
            await work_db.release(frontend.pool, unpublished, now=now)
        backlog, oldest = await work_db.outbox_backlog(frontend.pool, frontend.clock.now())
        metrics.OUTBOX_BACKLOG.set(backlog)
        metrics.OUTBOX_OLDEST_AGE.set(oldest)
        await self._purge(now)
        return len(rows)

    async def _republish(self, row: work_db.OutboxRow) -> bool:
        """Publish ``row`` again; False when the broker cannot take it now."""
        log.info("republishing late work", work=row.id, attempt=row.attempts)
        try:
            # The stored bytes go out as they are (pipeline.py encoded them once).
            await self.frontend.bus.publish(Queue(row.queue), codec.stored(row.body))
        except Exception as exc:
            if unavailable_dependency(exc) is None:
                raise
            return False
        metrics.SWEEPER_REPUBLISHED.inc()
        return True

    async def _purge(self, now: datetime) -> None:
        """The retention step, once every ``retention.interval`` (the first sweep runs it)."""
        if self._next_purge is not None and now < self._next_purge:
            return
        self._next_purge = now + self.retention.interval
        try:
            await self.retention.purge(now)
        except (asyncpg.PostgresError, OSError):
            # The outbox work above is done; the purge is tried again next interval.
            log.warning("retention purge failed; will retry", exc_info=True)

    async def _fail(self, row: work_db.OutboxRow) -> None:
        frontend = self.frontend
        log.warning("work exceeded its budget; failing it", work=row.id, attempts=row.attempts)
        metrics.SWEEPER_FAILED.inc()
        if row.kind == "challenge":
            applied = await work_db.apply_challenge_result(
                frontend.pool,
                row.subject_id,
                claims=None,
                problem=TIMEOUT_PROBLEM,
                now=frontend.clock.now(),
            )
        else:
            created = await work_db.apply_order_result(
                frontend.pool,
                row.subject_id,
                certificate_id=None,
                serial=None,
                chain_pem=None,
                problem=TIMEOUT_PROBLEM,
                now=frontend.clock.now(),
            )
            applied = created is not None
        if applied:
            metrics.enrollment_ended(
                "challenge" if row.kind == "challenge" else "finalize", TIMEOUT_PROBLEM.kind
            )
        # A row whose subject already left `processing` is deleted by neither call above.
        await frontend.pool.execute("DELETE FROM acme.outbox WHERE id = $1", row.id)
        frontend.waiters.wake(row.id)
