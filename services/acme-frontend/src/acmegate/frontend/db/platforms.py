"""Enrollment tokens of device management platforms (schema acme)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True, slots=True)
class PlatformToken:
    token: str
    platform: str
    created_at: datetime
    revoked_at: datetime | None


def _token(row: asyncpg.Record) -> PlatformToken:
    return PlatformToken(row["token"], row["platform"], row["created_at"], row["revoked_at"])


async def current_token(pool: asyncpg.Pool, platform: str) -> PlatformToken | None:
    row = await pool.fetchrow(
        "SELECT token, platform, created_at, revoked_at FROM acme.platform_tokens "
        "WHERE platform = $1 AND revoked_at IS NULL ORDER BY created_at DESC LIMIT 1",
        platform,
    )
    return _token(row) if row is not None else None


async def list_tokens(pool: asyncpg.Pool, platform: str | None = None) -> list[PlatformToken]:
    rows = await pool.fetch(
        "SELECT token, platform, created_at, revoked_at FROM acme.platform_tokens "
        "WHERE $1::text IS NULL OR platform = $1 ORDER BY platform, created_at DESC",
        platform,
    )
    return [_token(row) for row in rows]


async def rotate(pool: asyncpg.Pool, platform: str, token: str, now: datetime) -> PlatformToken:
    """Mint ``token`` for ``platform`` and revoke the ones before it, in one transaction."""
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(
            "UPDATE acme.platform_tokens SET revoked_at = $2 "
            "WHERE platform = $1 AND revoked_at IS NULL",
            platform,
            now,
        )
        row = await connection.fetchrow(
            "INSERT INTO acme.platform_tokens (token, platform, created_at) VALUES ($2, $1, $3) "
            "RETURNING token, platform, created_at, revoked_at",
            platform,
            token,
            now,
        )
    assert row is not None
    return _token(row)


async def ensure(pool: asyncpg.Pool, platform: str, token: str, now: datetime) -> PlatformToken:
    """The platform's live token, minting ``token`` if it has none.

    The partial unique index (one live token per platform) settles concurrent calls.
    """
    await pool.execute(
        "INSERT INTO acme.platform_tokens (token, platform, created_at) VALUES ($2, $1, $3) "
        "ON CONFLICT (platform) WHERE revoked_at IS NULL DO NOTHING",
        platform,
        token,
        now,
    )
    current = await current_token(pool, platform)
    assert current is not None
    return current


async def revoke(pool: asyncpg.Pool, platform: str, now: datetime) -> int:
    """Revoke every live token of ``platform``; how many were live."""
    result = await pool.execute(
        "UPDATE acme.platform_tokens SET revoked_at = $2 "
        "WHERE platform = $1 AND revoked_at IS NULL",
        platform,
        now,
    )
    return int(result.split()[-1])
