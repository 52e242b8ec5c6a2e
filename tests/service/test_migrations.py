"""Schema migrations: idempotent, and safe when several replicas start at the same moment."""

from __future__ import annotations

import asyncio

import asyncpg

from acmegate.cli.compose import SERVICE_NAMES, migrate_database


async def test_replicas_starting_together_apply_each_migration_once(database_url: str) -> None:
    results = await asyncio.gather(
        *(migrate_database(database_url, SERVICE_NAMES) for _ in range(4))
    )
    applied = [name for result in results for name in result]
    assert len(applied) == len(set(applied)), "a migration ran twice"
    assert {name.split("/")[0] for name in applied} == {"acme", "policy", "pki"}
    # A later start finds nothing to do.
    assert await migrate_database(database_url, SERVICE_NAMES) == []
    connection = await asyncpg.connect(database_url)
    try:
        recorded = await connection.fetchval("SELECT count(*) FROM public.acmegate_migrations")
    finally:
        await connection.close()
    assert recorded == len(applied)
