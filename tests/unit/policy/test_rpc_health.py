"""The dashboard's health panel does not turn every page view into a Jamf call."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from acmegate.common.admin_messages import (
    AdminCheckSignalSources,
    AdminSignalSourceStatuses,
    AdminValidateSignalSource,
)
from acmegate.policy.rpc import HEALTH_TTL, PolicyRpc
from acmegate.policy.sources.base import ValidationReport


class CountingSource:
    name = "jamf"

    def __init__(self) -> None:
        self.calls = 0

    async def validate(self) -> ValidationReport:
        self.calls += 1
        return ValidationReport("jamf", True, f"OK #{self.calls}")


async def test_health_is_reused_briefly_but_validate_always_asks() -> None:
    source = CountingSource()
    now = [1000.0]
    service: Any = SimpleNamespace(sources={"jamf": source})
    rpc = PolicyRpc(SimpleNamespace(config=None), service, monotonic=lambda: now[0])  # type: ignore[arg-type]

    async def health() -> str:
        reply = await rpc.handle(AdminCheckSignalSources(correlation_id="c"))
        assert isinstance(reply, AdminSignalSourceStatuses)
        return reply.sources[0].detail

    assert await health() == "OK #1"
    now[0] += HEALTH_TTL - 1
    assert await health() == "OK #1"
    await rpc.handle(AdminValidateSignalSource(correlation_id="c", name="jamf"))
    assert source.calls == 2
    now[0] += 2
    assert await health() == "OK #3"
