"""PostgreSQL access: the asyncpg pool (JSON codecs installed once per connection), measured:
its connections in use and how long queries wait for one appear in ``/metrics``."""

from __future__ import annotations

import time
from typing import Any

import asyncpg
import msgspec

from acmegate.common import metrics
from acmegate.common.config import Config, seconds
from acmegate.common.config.secrets import env_override

_json_encoder = msgspec.json.Encoder()


def _encode_json(value: Any) -> str:
    return _json_encoder.encode(value).decode("utf-8")


async def _init_connection(connection: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await connection.set_type_codec(
            kind, encoder=_encode_json, decoder=msgspec.json.decode, schema="pg_catalog"
        )


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Release a connection without asyncpg's RESET ALL round trip.

    acmegate never changes session state (settings come from ``server_settings``, locks are
    transaction-scoped), so the reset would cost a round trip per query for nothing.
    """


def database_url(config: Config) -> str | None:
    """The database URL: ``ACMEGATE_DATABASE_URL`` overrides the configuration."""
    return env_override("ACMEGATE_DATABASE_URL", config.database.url)


class _MeasuredPool(asyncpg.Pool):
    """asyncpg's pool, timing how long each query waits for a connection.

    Every query of a pool (``fetch``, ``execute``, ``acquire()``…) takes its connection through
    ``Pool._acquire``; measuring there costs two clock reads and one histogram update.
    """

    async def _acquire(self, timeout: float | None) -> Any:
        started = time.perf_counter()
        connection = await super()._acquire(timeout)  # type: ignore[misc]
        metrics.DB_POOL_WAIT.observe(time.perf_counter() - started)
        return connection


async def create_pool(
    url: str, *, min_size: int = 2, max_size: int = 20, statement_timeout: int = 10
) -> asyncpg.Pool:
    """A pool whose connections decode json/jsonb with msgspec (``asyncpg.create_pool``'s
    defaults otherwise), reported in ``/metrics``."""
    pool = _MeasuredPool(
        url,
        min_size=min_size,
        max_size=max_size,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        init=_init_connection,
        reset=_keep_session,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        server_settings={
            "statement_timeout": str(statement_timeout * 1000),
            "application_name": "acmegate",
        },
    )
    await pool
    metrics.watch_pool(pool)
    return pool


async def pool_from_config(config: Config, url: str) -> asyncpg.Pool:
    return await create_pool(
        url,
        min_size=config.database.pool_min,
        max_size=config.database.pool_max,
        statement_timeout=seconds(config.database.statement_timeout),
    )
