"""The policy service purges its own lookup audit (issue #8): rows older than
``retention.lookups`` go in bounded batches, newer ones stay; the clock is controlled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from acmegate.cli.compose import running
from acmegate.common.bus import InProcessBus
from acmegate.common.clock import FixedClock
from acmegate.common.config import load_config
from acmegate.policy.audit import record_lookups
from acmegate.policy.lookups import LookupEvent
from acmegate.policy.retention import LookupRetention
from acmegate.policy.service import PolicyService
from acmegate.testkit.apple_ca import AttestationCA
from tests.support.gateway import gateway_config

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("batch", [1, 3, 1000])
async def test_lookups_older_than_the_period_go_in_batches(
    tmp_path: Path, attestation_ca: AttestationCA, database_url: str, batch: int
) -> None:
    files = gateway_config(
        tmp_path / "gw",
        attestation_ca,
        overrides={"retention": {"lookups": "30d", "batch": batch, "interval": "1y"}},
    )
    config = load_config(files.config_path)
    async with running(config, ["policy"], database=database_url, bus=InProcessBus()) as state:
        policy = state.services["policy"]
        assert isinstance(policy, PolicyService) and policy.retention is not None
        pool = state.runtime.require_pool()
        event = LookupEvent("inventory-issuance", "inventory", "serial_number", "C02X", "found")
        ages = [timedelta(days=d) for d in (400, 90, 31, 30, 29, 1, 0)]
        for index, age in enumerate(ages):
            await record_lookups(
                pool, at=NOW - age, order_id=f"o{index}", correlation_id="c", events=[event]
            )
        # A second replica's purge, on a clock of its own, at the same moment.
        state.runtime.clock = FixedClock(NOW)
        other = LookupRetention(state.runtime, "30d")
        assert await other.purge(NOW) + await policy.retention.purge(NOW) == 3
        kept = await pool.fetch("SELECT order_id FROM policy.lookups ORDER BY at")
        assert [row["order_id"] for row in kept] == ["o3", "o4", "o5", "o6"]


async def test_lookups_are_kept_for_ever_when_the_period_is_null(
    tmp_path: Path, attestation_ca: AttestationCA, database_url: str
) -> None:
    files = gateway_config(
        tmp_path / "gw", attestation_ca, overrides={"retention": {"lookups": None}}
    )
    config = load_config(files.config_path)
    async with running(config, ["policy"], database=database_url, bus=InProcessBus()) as state:
        policy = state.services["policy"]
        assert isinstance(policy, PolicyService) and policy.retention is None
