"""A Jamf Pro signal source in /metrics: each request by endpoint and status, lookups by
result, and the source's health (against the fake Jamf Pro server, real HTTP)."""

from __future__ import annotations

from pathlib import Path

import pytest

from acmegate.policy.sources import SourceUnavailable
from acmegate.policy.sources.jamf import JamfSource
from acmegate.policy.sources.measured import MeasuredSource
from tests.support.fake_jamf import MAC_SERIAL, ManualClock, jamf_config, new_fake
from tests.support.metrics import local, local_total


async def no_sleep(_: float) -> None:
    return None


async def test_requests_lookups_and_health_are_measured(tmp_path: Path) -> None:
    clock = ManualClock()
    fake = new_fake(None, clock=clock.time)
    await fake.start()
    config = jamf_config(fake.url, tmp_path / "secrets", name="jamf-metrics", retries=0)
    source = MeasuredSource(JamfSource(config, monotonic=clock.monotonic, sleep=no_sleep))

    def requests(**labels: str) -> float:
        return local_total(
            "acmegate_jamf_request_duration_seconds_count", source="jamf-metrics", **labels
        )

    try:
        assert await source.lookup(MAC_SERIAL, "serial_number", fresh=True) is not None
        assert await source.lookup("C02NOSUCHONE", "serial_number", fresh=True) is None
        token_paths = [p for p in fake.stats.paths("/api/") if "token" in p]
        assert requests(endpoint=token_paths[0], status="200") == 1
        inventory = [p for p in fake.stats.paths("/api/") if "computers-inventory" in p]
        assert requests(endpoint=inventory[0], status="200") >= 2
        assert (
            local("acmegate_signal_source_lookups_total", source="jamf-metrics", result="found")
            == 1
        )
        assert (
            local("acmegate_signal_source_lookups_total", source="jamf-metrics", result="unknown")
            == 1
        )
        assert local("acmegate_signal_source_up", source="jamf-metrics") == 1
    finally:
        await fake.stop()
    try:
        with pytest.raises(SourceUnavailable):
            await source.lookup(MAC_SERIAL, "serial_number", fresh=True)
        assert requests(status="connect") == 1
        assert local("acmegate_signal_source_up", source="jamf-metrics") == 0
        assert (
            local(
                "acmegate_signal_source_lookups_total", source="jamf-metrics", result="unavailable"
            )
            == 1
        )
    finally:
        await source.close()
