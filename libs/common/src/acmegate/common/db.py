"""PostgreSQL access: the asyncpg pool (JSON codecs installed once per connection)."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec

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


async def create_pool(
    url: str, *, min_size: int = 2, max_size: int = 20, statement_timeout: int = 10
) -> asyncpg.Pool:
    """A pool whose connections decode json/jsonb with msgspec."""
    pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_keep_session,
        server_settings={
            "statement_timeout": str(statement_timeout * 1000),
            "application_name": "acmegate",
        },
    )
    assert pool is not None
    return pool


async def pool_from_config(config: Config, url: str) -> asyncpg.Pool:
    return await create_pool(
        url,
        min_size=config.database.pool_min,
        max_size=config.database.pool_max,
        statement_timeout=seconds(config.database.statement_timeout),
    )
