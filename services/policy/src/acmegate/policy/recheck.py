"""Revoke On Failure: the periodic re-check of devices that hold certificates (the guide's
"Select the Revoke On Failure checkbox to automatically revoke the certificate if an account
lookup fails").

Every ``revocation_check.interval`` each replica claims a batch of due watches (watch.py) and
looks each device up again, fresh (never from a cache):

- gone from the signal source → ``RevokeCertificates(reason="cessationOfOperation")``;
- still known but no longer managed → ``RevokeCertificates(reason="privilegeWithdrawn")``
  (an MDM keeps the record of a device it released: docs/jamf.md §8.5);

both by the attested serial (the signer revokes every valid certificate of that device), the
reason logged, the watch closed. A source that cannot answer revokes nothing (no
stale-if-error, and no revocation on an outage either): the device is checked again next
round. An ambiguous record is logged and kept watching; revocation waits for a clear answer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

import structlog

from acmegate.common.bus import Queue
from acmegate.common.config import seconds
from acmegate.common.ids import new_correlation_id
from acmegate.common.logging import bind_correlation_id
from acmegate.common.messages import RevokeCertificates
from acmegate.common.runtime import Runtime
from acmegate.common.vocabulary import RevocationReason
from acmegate.policy.sources.base import DeviceRecord, SignalSource, SourceUnavailable
from acmegate.policy.watch import Watch, claim_devices, claim_due, close_watch, record_checks

log = structlog.get_logger(__name__)

# Why a device's certificates go (RFC 5280 §5.3.1): it left the source, or is unmanaged.
GONE = RevocationReason.CESSATION_OF_OPERATION
UNMANAGED = RevocationReason.PRIVILEGE_WITHDRAWN


@dataclass(frozen=True, slots=True)
class Round:
    """What one re-check round did (for logs and tests)."""

    checked: int = 0
    revoked: int = 0
    unavailable: int = 0


def verdict(
    record: DeviceRecord | None, watch: Watch, source: str
) -> tuple[RevocationReason, str] | None:
    """(reason, detail) when the device's certificates must go; ``None`` to keep them."""
    if record is None:
        return GONE, (
            f"device {watch.identity} is no longer in signal source {source!r} "
            f"(lookup policy {watch.lookup_policy!r})"
        )
    if record.problem is None and not record.managed:
        return UNMANAGED, (
            f"device {watch.identity} is no longer managed by signal source {source!r} "
            f"(lookup policy {watch.lookup_policy!r})"
        )
    return None


class RevocationChecker:
    """The re-check loop of one policy service replica."""

    def __init__(self, runtime: Runtime, sources: Mapping[str, SignalSource]) -> None:
        config = runtime.config
        self._runtime = runtime
        self._sources = sources
        self._interval = float(seconds(config.revocation_check.interval))
        self._batch = config.revocation_check.batch
        self._sources_of = {
            policy.name: policy.signal_source
            for policy in config.lookup_policies
            if policy.revoke_on_failure and policy.purpose == "certificate_issuance"
        }
        self._task: asyncio.Task[None] | None = None

    @property
    def needed(self) -> bool:
        """Whether any lookup policy asks for Revoke On Failure."""
        return bool(self._sources_of)

    async def run_once(self) -> Round:
        """Claim the due watches and check each once (concurrently; sources cap themselves)."""
        pool = self._runtime.require_pool()
        now = self._runtime.clock.now()
        watches = await claim_due(
            pool,
            now=now,
            lease_until=now + timedelta(seconds=self._interval),
            lookup_policies=list(self._sources_of),
            limit=self._batch,
        )
        return await self._check_all(watches)

    async def _check_all(self, watches: Sequence[Watch]) -> Round:
        if not watches:
            return Round()
        pool = self._runtime.require_pool()
        outcomes = await asyncio.gather(*(self._check(watch) for watch in watches))
        kept = [(watch, outcome) for watch, outcome in zip(watches, outcomes, strict=True)]
        staying = [(w, o) for w, o in kept if o not in (GONE, UNMANAGED)]
        await record_checks(pool, now=self._runtime.clock.now(), checked=staying)
        return Round(
            checked=len(watches),
            revoked=len(watches) - len(staying),
            unavailable=sum(1 for _, outcome in staying if outcome == "unavailable"),
        )

    async def check_devices(self, source: str, identities: Sequence[str]) -> Round:
        """Check now the watched devices of signal source ``source`` named by serial or UDID
        (a Jamf webhook said they changed): the same fresh lookup and verdict as a round."""
        policies = [name for name, used in self._sources_of.items() if used == source]
        if not policies or not identities:
            return Round()
        pool = self._runtime.require_pool()
        watches = await claim_devices(
            pool,
            lease_until=self._runtime.clock.now() + timedelta(seconds=self._interval),
            lookup_policies=policies,
            identities=identities,
            limit=self._batch,
        )
        return await self._check_all(watches)

    async def _check(self, watch: Watch) -> str:
        source = self._sources[self._sources_of[watch.lookup_policy]]
        correlation_id = new_correlation_id()
        with bind_correlation_id(correlation_id):
            try:
                record = await source.lookup(watch.identity, watch.identity_kind, fresh=True)
            except SourceUnavailable as exc:
                log.warning(
                    "revoke-on-failure check postponed: signal source unavailable",
                    device=watch.device_serial,
                    source=exc.source,
                    reason=exc.reason,
                )
                return "unavailable"
            decided = verdict(record, watch, source.name)
            if decided is None:
                if record is not None and record.problem is not None:
                    log.warning(
                        "revoke-on-failure check inconclusive",
                        device=watch.device_serial,
                        problem=record.problem,
                    )
                    return "ambiguous"
                return "found"
            reason, detail = decided
            # Publish first: if closing fails, the next round publishes again (the signer's
            # revocation is idempotent); closed first, a crash would lose the revocation.
            await self._runtime.bus.publish(
                Queue.SIGNER_REVOKE,
                RevokeCertificates(
                    correlation_id=correlation_id,
                    reason=reason,
                    device_serial=watch.device_serial,
                    detail=detail,
                ),
            )
            log.warning(
                "revoke on failure: certificates of the device sent for revocation",
                device=watch.device_serial,
                lookup_policy=watch.lookup_policy,
                revocation_reason=reason,
                detail=detail,
            )
            await close_watch(
                self._runtime.require_pool(),
                watch,
                now=self._runtime.clock.now(),
                outcome="unknown" if reason == GONE else "unmanaged",
                reason=f"{reason}: {detail}",
            )
            return reason

    async def _loop(self) -> None:
        while True:
            try:
                done = await self.run_once()
                if done.checked:
                    log.info(
                        "revoke-on-failure round",
                        checked=done.checked,
                        revoked=done.revoked,
                        unavailable=done.unavailable,
                    )
            except asyncio.CancelledError:
                raise
            except Exception:
                # The database or the broker hiccuped: the leases expire, next round retries.
                log.exception("revoke-on-failure round failed")
            await asyncio.sleep(self._interval)

    def start(self) -> None:
        """Run rounds every ``revocation_check.interval`` until :meth:`stop`."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="revoke-on-failure")

    async def stop(self) -> None:
        """Stop after the current round's in-flight work is cancelled."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
