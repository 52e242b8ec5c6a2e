"""A signal source seen from ``/metrics``: its lookups counted, its health a gauge.

The policy service wraps every source it builds, so each lookup — for an enrollment, a
Revoke-On-Failure re-check, a RADIUS request or the "Validate" button — moves
``acmegate_signal_source_lookups_total{source, result}`` (found, unknown, unavailable) and
sets ``acmegate_signal_source_up{source}`` to 1 (it answered) or 0 (it could not). The alert
"signal source unreachable" (deploy/prometheus) watches the latter.
"""

from __future__ import annotations

from acmegate.common import metrics
from acmegate.policy.sources.base import (
    DeviceKind,
    DeviceRecord,
    IdentityKind,
    SignalSource,
    SourceUnavailable,
    ValidationReport,
)


class MeasuredSource:
    """``source`` with its lookups and health recorded (label children resolved once)."""

    def __init__(self, source: SignalSource) -> None:
        self._source = source
        self.name = source.name
        self._found = metrics.source_lookups(source.name, "found")
        self._unknown = metrics.source_lookups(source.name, "unknown")
        self._unavailable = metrics.source_lookups(source.name, "unavailable")
        self._up = metrics.source_up(source.name)

    async def lookup(
        self,
        identity: str,
        kind: IdentityKind,
        *,
        fresh: bool = False,
        likely: DeviceKind | None = None,
    ) -> DeviceRecord | None:
        """The wrapped source's answer, recorded."""
        try:
            record = await self._source.lookup(identity, kind, fresh=fresh, likely=likely)
        except SourceUnavailable:
            self._unavailable.inc()
            self._up.set(0)
            raise
        (self._unknown if record is None else self._found).inc()
        self._up.set(1)
        return record

    async def validate(self) -> ValidationReport:
        """The wrapped source's validation; its outcome is the source's health too."""
        report = await self._source.validate()
        self._up.set(1 if report.ok else 0)
        return report

    @property
    def inner(self) -> SignalSource:
        """The measured source itself (a webhook drops a Jamf source's cached lookups)."""
        return self._source

    async def close(self) -> None:
        """Close the wrapped source."""
        await self._source.close()
