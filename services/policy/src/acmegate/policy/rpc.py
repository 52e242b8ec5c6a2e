"""The policy service's answers to the admin API (request/reply on ``RpcQueue.POLICY``).

The guide's "Validate" buttons run where the signal sources live: validating a signal source
(its connection or inventory), a lookup policy tried with an identity
(:func:`acmegate.policy.validation.validate_lookup`, on the running source so its connection
pool and cache are reused), and the health of every source for the dashboard.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from acmegate.common.admin_messages import (
    AdminCheckSignalSources,
    AdminLookupReport,
    AdminSignalSourceStatuses,
    AdminValidateLookup,
    AdminValidateSignalSource,
    SignalSourceStatus,
)
from acmegate.common.bus.codec import Message, schema_of
from acmegate.common.errors import malformed, not_found
from acmegate.common.runtime import Runtime
from acmegate.policy.sources.base import SignalSource
from acmegate.policy.validation import validate_lookup

# A source slower than this is reported as not answering (the admin caller waits longer).
VALIDATE_TIMEOUT = 8.0
# The dashboard asks for every source's health on each page view; a Jamf instance is asked at
# most this often for it (an explicit "Validate" always asks).
HEALTH_TTL = 30.0


class LiveSources(Protocol):
    """What the answers need of the running service (``PolicyService``)."""

    @property
    def sources(self) -> Mapping[str, SignalSource]:
        """The live signal sources by name."""


class PolicyRpc:
    """Answers admin requests with the running policy service's signal sources."""

    def __init__(
        self,
        runtime: Runtime,
        service: LiveSources,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._runtime = runtime
        self._service = service
        self._monotonic = monotonic
        self._health: dict[str, tuple[float, SignalSourceStatus]] = {}

    async def handle(self, message: Message) -> Message:
        """One request → its reply (the bus turns a raised AcmeError into ``RpcFailed``)."""
        if isinstance(message, AdminValidateSignalSource):
            status = await check_source(self._source(message.name))
            return AdminSignalSourceStatuses(
                correlation_id=message.correlation_id, sources=[status]
            )
        if isinstance(message, AdminCheckSignalSources):
            sources = self._service.sources
            statuses = await asyncio.gather(*(self._health_of(s) for s in sources.values()))
            return AdminSignalSourceStatuses(
                correlation_id=message.correlation_id, sources=list(statuses)
            )
        if isinstance(message, AdminValidateLookup):
            return await self._lookup(message)
        raise malformed(f"the policy service does not answer {schema_of(message)}")

    async def _health_of(self, source: SignalSource) -> SignalSourceStatus:
        now = self._monotonic()
        cached = self._health.get(source.name)
        if cached is not None and now - cached[0] < HEALTH_TTL:
            return cached[1]
        status = await check_source(source)
        self._health[source.name] = (now, status)
        return status

    def _source(self, name: str) -> SignalSource:
        source = self._service.sources.get(name)
        if source is None:
            known = ", ".join(sorted(self._service.sources)) or "none"
            raise not_found(f"no signal source named {name!r} (configured: {known})")
        return source

    async def _lookup(self, request: AdminValidateLookup) -> AdminLookupReport:
        config = self._runtime.config
        policy = next((p for p in config.lookup_policies if p.name == request.name), None)
        if policy is None:
            known = ", ".join(p.name for p in config.lookup_policies) or "none"
            raise not_found(f"no lookup policy named {request.name!r} (configured: {known})")
        if not request.identity.strip():
            raise malformed("identity: must not be empty")
        report = await validate_lookup(
            config, policy.name, request.identity, source=self._source(policy.signal_source)
        )
        return AdminLookupReport(correlation_id=request.correlation_id, report=report)


async def check_source(source: SignalSource) -> SignalSourceStatus:
    """The source's own validation, bounded in time."""
    try:
        report = await asyncio.wait_for(source.validate(), VALIDATE_TIMEOUT)
    except TimeoutError:
        return SignalSourceStatus(source.name, False, f"no answer within {VALIDATE_TIMEOUT:g}s")
    return SignalSourceStatus(report.source, report.ok, report.detail)
