"""Group commit: concurrent writers share round trips, and each still learns its own fate."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from acmegate.common.db import create_pool
from acmegate.common.group_commit import GroupCommit


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, min_size=1, max_size=4)
    await pool.execute("CREATE TABLE t (id int PRIMARY KEY, note text)")
    yield pool
    await pool.close()


class Counting(GroupCommit):
    batches: int = 0

    async def _flush(self) -> None:
        self.batches += 1
        await super()._flush()


async def test_every_write_is_committed_when_its_writer_returns(pool: asyncpg.Pool) -> None:
    writer = Counting(pool, "INSERT INTO t (id, note) VALUES ($1, $2)")
    await asyncio.gather(*(writer.write(i, f"row {i}") for i in range(100)))
    assert await pool.fetchval("SELECT count(*) FROM t") == 100
    assert writer.batches < 10, "concurrent writers should share batches"
    await writer.write(100, "alone")
    assert await pool.fetchval("SELECT note FROM t WHERE id = 100") == "alone"


async def test_a_failing_batch_fails_each_of_its_writers_and_the_next_batch_works(
    pool: asyncpg.Pool,
) -> None:
    writer = GroupCommit(pool, "INSERT INTO t (id, note) VALUES ($1, $2)")
    results = await asyncio.gather(
        writer.write(1, "a"), writer.write(1, "duplicate"), return_exceptions=True
    )
    assert all(isinstance(r, asyncpg.UniqueViolationError) for r in results)
    assert await pool.fetchval("SELECT count(*) FROM t") == 0  # atomic: nothing half-written
    await writer.write(2, "b")
    assert await pool.fetchval("SELECT count(*) FROM t") == 1
