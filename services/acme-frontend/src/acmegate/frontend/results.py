"""The results consumer: applies pipeline outcomes to the ACME state (any replica may run it).

Each outcome is one compare-and-set statement (``db/work.py``), so a redelivered or duplicated
result changes nothing the second time. A certificate that arrives for an order that is no
longer processing (the sweeper failed it first) was never delivered to anyone: it is revoked,
so that no certificate exists that the client was told was not issued.
"""

from __future__ import annotations

from datetime import datetime

import structlog
from cryptography import x509

from acmegate.common import metrics
from acmegate.common.bus import Delivery, Queue, Reject
from acmegate.common.bus.codec import Message
from acmegate.common.ids import new_id
from acmegate.common.messages import (
    ChallengeVerified,
    OrderFinalized,
    Problem,
    RevokeCertificates,
    WorkDone,
)
from acmegate.common.vocabulary import RevocationReason
from acmegate.frontend.context import Frontend
from acmegate.frontend.db import work as work_db
from acmegate.frontend.waiters import Outcome

log = structlog.get_logger(__name__)


def _not_after(chain_pem: str | None) -> datetime | None:
    """The leaf's notAfter (the first certificate of the chain), for retention; None when
    there is no chain or it does not parse (the chain is then kept for ever)."""
    if not chain_pem:
        return None
    try:
        return x509.load_pem_x509_certificate(chain_pem.encode("ascii")).not_valid_after_utc
    except ValueError:
        return None


class ResultsConsumer:
    def __init__(self, frontend: Frontend) -> None:
        self.frontend = frontend
        # enrollment policy → its certificate template, for the enrollment events.
        self._templates = {
            policy.name: policy.certificate_template
            for policy in frontend.config.enrollment_policies
        }

    async def handle(self, message: Message, delivery: Delivery) -> None:
        if isinstance(message, ChallengeVerified):
            await self._challenge(message)
        elif isinstance(message, OrderFinalized):
            await self._order(message)
        else:
            raise Reject(f"unexpected message {type(message).__name__} on {delivery.queue}")

    async def _challenge(self, result: ChallengeVerified) -> None:
        frontend = self.frontend
        applied = await work_db.apply_challenge_result(
            frontend.pool,
            result.challenge_id,
            claims=result.claims,
            problem=result.problem,
            now=frontend.clock.now(),
            failures=frontend.limits.failed_validations,
            charged_to_device=result.charged_to_device,
        )
        outcome = self._outcome(result.problem) if applied else None
        if applied and result.problem is not None:
            metrics.enrollment_ended("challenge", result.problem.kind)
        if result.problem is not None:
            log.info(
                "challenge failed",
                challenge=result.challenge_id,
                problem=result.problem.kind,
                detail=result.problem.detail,
            )
        await self._done("challenge", result.challenge_id, result.correlation_id, outcome)

    async def _order(self, result: OrderFinalized) -> None:
        frontend = self.frontend
        certificate_id = new_id()
        created = await work_db.apply_order_result(
            frontend.pool,
            result.order_id,
            certificate_id=certificate_id,
            serial=result.certificate_serial,
            chain_pem=result.chain_pem,
            problem=result.problem,
            now=frontend.clock.now(),
            record=result.record,
            template=(
                self._templates.get(result.record.enrollment_policy)
                if result.record is not None and result.record.enrollment_policy
                else None
            ),
            not_after=_not_after(result.chain_pem),
        )
        outcome = None
        if created is not None:
            outcome = self._outcome(result.problem, None if result.problem else certificate_id)
            if result.problem is None:
                metrics.ENROLLMENT_ISSUED.inc()
                # Clocks may disagree by a little: the database stamped the order's creation.
                elapsed = (outcome.at - created).total_seconds()
                metrics.ENROLLMENT_DURATION.observe(max(elapsed, 0.0))
            else:
                metrics.enrollment_ended("finalize", result.problem.kind)
                log.info(
                    "order failed",
                    order=result.order_id,
                    problem=result.problem.kind,
                    detail=result.problem.detail,
                )
        elif result.certificate_serial is not None:
            await self._late_certificate(result)
        await self._done("order", result.order_id, result.correlation_id, outcome)

    def _outcome(self, problem: Problem | None, certificate_id: str | None = None) -> Outcome:
        """What the request waiting on this result should answer (see waiters.py)."""
        return Outcome(
            valid=problem is None,
            at=self.frontend.clock.now(),
            error=problem,
            certificate_id=certificate_id,
        )

    async def _late_certificate(self, result: OrderFinalized) -> None:
        status, delivered = await work_db.order_certificate_serial(
            self.frontend.pool, result.order_id
        )
        if delivered == result.certificate_serial:
            return  # a duplicate of a result already applied
        log.warning(
            "certificate arrived for an order no longer processing; revoking it",
            order=result.order_id,
            order_status=status,
            serial=result.certificate_serial,
        )
        assert result.certificate_serial is not None
        await self.frontend.bus.publish(
            Queue.SIGNER_REVOKE,
            RevokeCertificates(
                correlation_id=result.correlation_id,
                reason=RevocationReason.SUPERSEDED,
                serials=[result.certificate_serial],
                detail=f"order {result.order_id} ended ({status}) before its certificate arrived",
            ),
        )

    async def _done(
        self,
        kind: work_db.WorkKind,
        subject_id: str,
        correlation_id: str,
        outcome: Outcome | None,
    ) -> None:
        woken_here = self.frontend.waiters.wake(work_db.work_key(kind, subject_id), outcome)
        # The request waiting for this result is on one replica: when it is this one, the
        # other replicas have nobody to wake and the broadcast is skipped.
        if self.frontend.broadcast_results and not woken_here:
            await self.frontend.bus.broadcast(
                WorkDone(correlation_id=correlation_id, kind=kind, id=subject_id)
            )

    async def on_broadcast(self, message: Message) -> None:
        if isinstance(message, WorkDone):
            self.frontend.waiters.wake(work_db.work_key(message.kind, message.id))
