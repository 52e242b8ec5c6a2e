"""The policy service: consumes ``policy.finalize``, hands orders on to the signer or fails them.

Handlers stay thin (docs/design.md "Handlers"): decode → one call to :class:`PolicyStage` → publish.
What the device sees is decided here, not at the edge (docs/design.md "Errors"):

- a policy refusal is an :class:`AcmeError` → ``OrderFinalized(problem=…)`` to the frontend;
- a signal source that cannot answer is not the device's fault: the handler raises so the bus
  redelivers with backoff, and on the last delivery but one it answers ``serverInternal`` so
  the order fails cleanly instead of dead-lettering and waiting for the sweeper. A Jamf source
  with ``on_unavailable: fail`` answers ``serverInternal`` at once (its client already retried).

Besides the queue, the service runs the Revoke On Failure re-check (recheck.py) and, when
configured, the RADIUS endpoint (radius/), both over the same live signal sources, and purges
its lookup audit after ``retention.lookups`` (retention.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from importlib.resources import files

import structlog

from acmegate.common import metrics
from acmegate.common.bus import Delivery, Queue, Reject, RpcQueue
from acmegate.common.bus.codec import Message, schema_of
from acmegate.common.config import ConfigError, seconds
from acmegate.common.config.model import JamfSourceConfig, SignalSourceConfig
from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.common.logging import bind_correlation_id
from acmegate.common.messages import FinalizeOrder, OrderFinalized
from acmegate.common.migrations import SchemaMigrations
from acmegate.common.runtime import Runtime, ServiceSpec
from acmegate.common.stages import stage
from acmegate.policy.audit import LookupAudit
from acmegate.policy.engine import PolicyEngine
from acmegate.policy.finalize import PolicyStage
from acmegate.policy.lookups import LookupSession
from acmegate.policy.radius import RadiusEndpoint
from acmegate.policy.recheck import RevocationChecker
from acmegate.policy.retention import LookupRetention
from acmegate.policy.rpc import PolicyRpc
from acmegate.policy.sources.base import SignalSource, SourceUnavailable
from acmegate.policy.sources.factory import build_source
from acmegate.policy.sources.measured import MeasuredSource
from acmegate.policy.templates import compile_templates
from acmegate.policy.validation import validate_config
from acmegate.policy.watch import Watch, watch_for
from acmegate.policy.webhooks import WebhookReceiver

log = structlog.get_logger(__name__)

SCOPE = "acmegate.policy"

SourceFactory = Callable[[SignalSourceConfig], SignalSource]


def migrations() -> list[SchemaMigrations]:
    """The ``policy`` schema: the lookup audit and the watched devices (the composition root
    migrates before start)."""
    return [SchemaMigrations.from_folder("policy", files("acmegate.policy") / "migrations")]


class PolicyService:
    """Signal sources, policies and templates between the attestation stage and the signer.

    ``source_factory`` builds each configured signal source (tests inject sources that fail).
    The database is optional: without one the lookup audit is not written.
    """

    name = "policy"

    def __init__(self, runtime: Runtime, *, source_factory: SourceFactory = build_source) -> None:
        self._runtime = runtime
        self._source_factory = source_factory
        self._sources: dict[str, SignalSource] = {}
        self._stage: PolicyStage | None = None
        # Answer on this delivery rather than fail again: the next failure would dead-letter.
        self._last_try = max(runtime.config.bus.max_deliveries - 1, 1)
        config = runtime.config
        # Sources whose outage fails the order at once (on_unavailable: fail).
        self._fail_fast = {
            source.name
            for source in config.signal_sources
            if isinstance(source, JamfSourceConfig) and source.on_unavailable == "fail"
        }
        self._recheck_after = timedelta(seconds=seconds(config.revocation_check.interval))
        self.checker: RevocationChecker | None = None
        self.radius: RadiusEndpoint | None = None
        self.webhooks: WebhookReceiver | None = None
        self.retention: LookupRetention | None = None
        self._lookup_audit = LookupAudit(runtime.pool) if runtime.pool is not None else None

    @property
    def sources(self) -> dict[str, SignalSource]:
        """The live signal sources by name (for the admin API's validate actions)."""
        return self._sources

    async def start(self) -> None:
        """Validate the configuration, build sources and templates once, start consuming."""
        config = self._runtime.config
        problems = validate_config(config)
        if problems:
            raise ConfigError("policy: " + "; ".join(problems))
        self._sources = {
            source.name: MeasuredSource(self._source_factory(source))
            for source in config.signal_sources
        }
        # Variables were checked against the sources' attributes by validate_config.
        templates = compile_templates(config)
        self._stage = PolicyStage(
            PolicyEngine(config, self._sources), templates, config.enrollment_policies
        )
        if config.radius.enabled:
            self.radius = RadiusEndpoint(self._runtime, self._sources)
            await self.radius.start()
        checker = RevocationChecker(self._runtime, self._sources)
        if config.revocation_check.enabled and checker.needed:
            if self._runtime.pool is None:
                log.warning("revoke on failure needs a database; the re-check does not run")
            else:
                self.checker = checker
                checker.start()
        if config.jamf_webhooks.enabled:
            # Webhooks re-check at once even when the periodic round is off.
            usable = checker.needed and self._runtime.pool is not None
            self.webhooks = WebhookReceiver(
                self._runtime, self._sources, checker if usable else None
            )
            await self.webhooks.start()
        if config.retention.lookups is not None and self._runtime.pool is not None:
            self.retention = LookupRetention(self._runtime, config.retention.lookups)
            self.retention.start()
        await self._runtime.bus.consume(
            Queue.FINALIZE_POLICY, self._handle, prefetch=config.bus.prefetch
        )
        # The admin API's "Validate" buttons and health panel (policy/rpc.py).
        await self._runtime.bus.serve(RpcQueue.POLICY, PolicyRpc(self._runtime, self).handle)
        log.info(
            "policy service started",
            enrollment_policies=len(config.enrollment_policies),
            templates=len(templates),
            signal_sources=len(self._sources),
        )

    async def stop(self) -> None:
        """Stop the re-check and the RADIUS endpoint, release the signal sources (the
        composition root closes the bus)."""
        self._stage = None
        if self.retention is not None:
            await self.retention.stop()
            self.retention = None
        if self.checker is not None:
            await self.checker.stop()
            self.checker = None
        if self.radius is not None:
            await self.radius.stop()
            self.radius = None
        if self.webhooks is not None:
            await self.webhooks.stop()
            self.webhooks = None
        sources, self._sources = self._sources, {}
        for source in sources.values():
            await source.close()

    async def _handle(self, message: Message, delivery: Delivery) -> None:
        if not isinstance(message, FinalizeOrder):
            raise Reject(f"{Queue.FINALIZE_POLICY} does not take {schema_of(message)}")
        if message.csr is None:
            raise Reject(f"order {message.order_id} reached policy without a verified CSR")
        with bind_correlation_id(message.correlation_id):
            await self._finalize(message, delivery)

    async def _finalize(self, order: FinalizeOrder, delivery: Delivery) -> None:
        policy_stage = self._stage
        if policy_stage is None:
            raise RuntimeError("the policy service is not started")
        session = LookupSession()
        try:
            with stage(SCOPE, "decide", metrics.STAGE_POLICY):
                ready = await policy_stage.apply(order, session)
        except AcmeError as error:
            log.info(
                "order refused", order_id=order.order_id, kind=str(error.kind), detail=error.detail
            )
            await self._answer(order, session, error)
            return
        except SourceUnavailable as exc:
            if exc.source not in self._fail_fast and delivery.delivery_count < self._last_try:
                log.warning(
                    "signal source unavailable, will retry",
                    order_id=order.order_id,
                    source=exc.source,
                    reason=exc.reason,
                    delivery=delivery.delivery_count,
                )
                await self._audit(order, session)
                raise
            log.error(
                "signal source unavailable, order fails",
                order_id=order.order_id,
                source=exc.source,
                reason=exc.reason,
            )
            await self._answer(order, session, AcmeError(ErrorKind.SERVER_INTERNAL, str(exc)))
            return
        assert ready.spec is not None and ready.record is not None
        log.info(
            "order accepted by policy",
            order_id=order.order_id,
            enrollment_policy=ready.record.enrollment_policy,
            template=ready.spec.template,
            ca=ready.spec.ca,
        )
        # Independent writes: the audit row (with the Revoke On Failure watch, if any) and the
        # hand-over to the signer go out together.
        watch = watch_for(order.order_id, ready.record, session.events)
        await asyncio.gather(
            self._audit(order, session, watch),
            self._runtime.bus.publish(Queue.FINALIZE_SIGNER, ready),
        )

    async def _answer(self, order: FinalizeOrder, session: LookupSession, error: AcmeError) -> None:
        result = OrderFinalized(
            correlation_id=order.correlation_id, order_id=order.order_id, problem=error.to_problem()
        )
        await asyncio.gather(
            self._audit(order, session), self._runtime.bus.publish(Queue.FRONTEND_RESULTS, result)
        )

    async def _audit(
        self, order: FinalizeOrder, session: LookupSession, watch: Watch | None = None
    ) -> None:
        if self._lookup_audit is None:
            return
        await self._lookup_audit.record(
            at=self._runtime.clock.now(),
            order_id=order.order_id,
            correlation_id=order.correlation_id,
            events=session.events,
            watch=watch,
            recheck_after=self._recheck_after,
        )


SPEC = ServiceSpec("policy", PolicyService, migrations=migrations, validate=validate_config)
