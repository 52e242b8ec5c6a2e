"""Keeps every CA's CRL current in ``pki.crls``, whichever replica or process revoked.

Every few seconds (``pki.crl_check_interval``) one query compares each CA's newest CRL with
its revocation counter (``pki.revocation_state``, moved by every revocation in the statement
that makes it); a CA gets a new CRL when the counter moved, when ``crl.regenerate_every`` has
passed, or when it has none. A revocation handled by this process also wakes the publisher
at once. Replicas coordinate through PostgreSQL: a transaction-scoped advisory lock per CA
lets one of them regenerate while the others skip, and the ``(ca_name, number)`` primary key
keeps CRL numbers strictly increasing even if that lock were bypassed. Each check also
reports every CA's newest CRL (thisUpdate, nextUpdate) in ``/metrics``, whoever made it.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

import asyncpg
import structlog
from cryptography.hazmat.primitives import serialization

from acmegate.common import metrics
from acmegate.common.clock import Clock
from acmegate.common.config import seconds
from acmegate.signer.authorities import Authorities, Authority
from acmegate.signer.crl import build_crl
from acmegate.signer.db.crls import (
    CrlState,
    StoredCrl,
    crl_states,
    lock_crl,
    revoked_entries,
    store_crl,
)

log = structlog.get_logger(__name__)


def is_stale(authority: Authority, state: CrlState, now: datetime) -> bool:
    """Whether ``authority`` needs a new CRL (module doc)."""
    if state.number is None or state.this_update is None or state.next_update is None:
        return True
    if state.covered_generation is None or state.generation > state.covered_generation:
        return True
    every = timedelta(seconds=seconds(authority.config.crl.regenerate_every))
    return now >= state.this_update + every or now >= state.next_update


class CrlPublisher:
    """Regenerates stale CRLs of the CAs with ``crl.enabled`` (module doc)."""

    def __init__(
        self,
        authorities: Authorities,
        pool: asyncpg.Pool,
        clock: Clock,
        *,
        check_interval: float,
    ) -> None:
        self._authorities = [a for a in authorities.values() if a.config.crl.enabled]
        self._pool = pool
        self._clock = clock
        self._interval = check_interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._authorities and self._task is None:
            self._task = asyncio.create_task(self._run(), name="crl-publisher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def nudge(self) -> None:
        """Check now rather than at the next interval (after a local revocation)."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                await self.publish_due()
            except (asyncpg.PostgresError, OSError) as exc:
                # The database is away for a moment: the next round tries again.
                log.warning("CRL check failed", error=str(exc))
            except Exception:
                # A CA key that cannot sign must not end the loop for the other CAs.
                log.exception("CRL generation failed")
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation
            # that arrives just as a nudge sets the event, and stop() then waits forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            self._wake.clear()

    async def publish_due(self) -> list[StoredCrl]:
        """Regenerate every stale CRL; the CRLs this call stored."""
        if not self._authorities:
            return []
        now = self._clock.now()
        states = await crl_states(self._pool, [a.name for a in self._authorities])
        by_name = {state.ca_name: state for state in states}
        published = []
        for authority in self._authorities:
            state = by_name[authority.name]
            if state.this_update is not None and state.next_update is not None:
                metrics.newest_crl(
                    authority.name, this_update=state.this_update, next_update=state.next_update
                )
            if is_stale(authority, state, now):
                crl = await self.regenerate(authority)
                if crl is not None:
                    metrics.newest_crl(
                        authority.name, this_update=crl.this_update, next_update=crl.next_update
                    )
                    published.append(crl)
        return published

    async def regenerate(self, authority: Authority, *, force: bool = False) -> StoredCrl | None:
        """A new CRL for ``authority`` unless another replica is making one or (without
        ``force``) the current one turned out fresh; ``None`` then."""
        async with self._pool.acquire() as connection, connection.transaction():
            if not await lock_crl(connection, authority.name):
                return None
            # The counter is read before the entries: a revocation committed in between is
            # then in the CRL and moves the counter past it, costing one more CRL at most,
            # never a missed revocation.
            (state,) = await crl_states(connection, [authority.name])
            now = self._clock.now().replace(microsecond=0)
            if not force and not is_stale(authority, state, now):
                return None
            entries = await revoked_entries(connection, authority.name, now=now)
            number = (state.number or 0) + 1
            next_update = now + timedelta(seconds=seconds(authority.config.crl.validity))
            builder = build_crl(
                authority, number=number, entries=entries, this_update=now, next_update=next_update
            )
            signed = await authority.key.sign_crl(builder, authority.signature_hash)
            crl = StoredCrl(
                ca_name=authority.name,
                number=number,
                this_update=now,
                next_update=next_update,
                entries=len(entries),
                der=signed.public_bytes(serialization.Encoding.DER),
            )
            if not await store_crl(connection, crl, generation=state.generation):
                return None
        log.info("CRL published", ca=authority.name, number=number, entries=len(entries))
        return crl
