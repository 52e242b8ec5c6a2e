"""Rate-limit refusals and retention purges are counted in /metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from acmegate.cli.compose import migrate_database
from acmegate.common.config.model import RateLimit, RetentionConfig
from acmegate.common.db import create_pool
from acmegate.common.errors import ErrorKind
from acmegate.frontend.rate_limits import Limit
from acmegate.frontend.retention import Retention
from tests.support.metrics import local

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_refusal_is_counted_by_limit() -> None:
    limit = Limit.from_config(
        "new_orders_per_account", "new orders", RateLimit(limit=1, period="1h")
    )
    assert limit is not None
    before = local("acmegate_rate_limit_refusals_total", limit="new_orders_per_account")
    error = limit.exceeded("account a", NOW + timedelta(hours=1), NOW)
    assert error.kind is ErrorKind.RATE_LIMITED
    after = local("acmegate_rate_limit_refusals_total", limit="new_orders_per_account")
    assert after - before == 1


async def test_purged_rows_are_counted_by_kind(database_url: str) -> None:
    await migrate_database(database_url, ["frontend"])
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        await pool.executemany(
            "INSERT INTO acme.rate_limits (name, subject, tat) VALUES ('x', $1, $2)",
            [(f"s{n}", NOW - timedelta(minutes=n)) for n in range(1, 4)],
        )
        before = local("acmegate_retention_purged_total", kind="rate_limits")
        purged = await Retention(pool, RetentionConfig()).purge(NOW)
        assert purged.rate_limits == 3
        assert local("acmegate_retention_purged_total", kind="rate_limits") - before == 3
    finally:
        await pool.close()
