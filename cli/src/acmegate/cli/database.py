"""A database connection for CLI commands that work on the gateway's state."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

import asyncpg

from acmegate.cli.compose import migrate_database, resolve_database
from acmegate.cli.errors import CliError
from acmegate.common.config import Config
from acmegate.common.db import create_pool

T = TypeVar("T")


async def database_url(config: Config) -> str:
    """The configured database, or the embedded one of ``acmegate standalone``."""
    url = resolve_database(config)
    if url is not None:
        return url
    if config.database.embedded is not None:
        from acmegate.cli.standalone import embedded_database

        return await embedded_database(config.database.embedded.data_dir)
    raise CliError("database.url (or ACMEGATE_DATABASE_URL) is required")


@contextlib.asynccontextmanager
async def state_pool(config: Config, services: Sequence[str]) -> AsyncIterator[asyncpg.Pool]:
    """A small pool on the gateway's database, its schemas migrated for ``services``."""
    url = await database_url(config)
    try:
        await migrate_database(url, services)
        pool = await create_pool(url, min_size=1, max_size=2)
    except (OSError, asyncpg.PostgresError) as exc:
        raise CliError(f"cannot use the database: {exc}") from exc
    try:
        yield pool
    finally:
        await pool.close()


def with_state_pool(
    config: Config, services: Sequence[str], work: Callable[[asyncpg.Pool], Awaitable[T]]
) -> T:
    """Run ``work`` on the gateway's database (``database.url``/``ACMEGATE_DATABASE_URL``, or
    the embedded PostgreSQL of ``acmegate standalone``, started or joined here)."""

    async def run() -> T:
        async with state_pool(config, services) as pool:
            return await work(pool)

    return asyncio.run(run())
