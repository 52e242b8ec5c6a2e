"""EAB keys (RFC 8555 §7.3.4) in schema acme: their ids, state and the account each bound."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg
from asyncpg.pool import PoolConnectionProxy

_COLUMNS = "id, description, created_at, revoked_at, account_id, bound_at"


@dataclass(frozen=True, slots=True)
class EabKey:
    id: str
    description: str
    created_at: datetime
    revoked_at: datetime | None
    account_id: str | None
    bound_at: datetime | None


def _key(row: asyncpg.Record) -> EabKey:
    return EabKey(
        row["id"],
        row["description"],
        row["created_at"],
        row["revoked_at"],
        row["account_id"],
        row["bound_at"],
    )


async def create(pool: asyncpg.Pool, key_id: str, description: str, now: datetime) -> EabKey:
    row = await pool.fetchrow(
        f"INSERT INTO acme.eab_keys (id, description, created_at) VALUES ($1, $2, $3) "  # noqa: S608
        f"RETURNING {_COLUMNS}",
        key_id,
        description,
        now,
    )
    assert row is not None
    return _key(row)


async def list_keys(pool: asyncpg.Pool) -> list[EabKey]:
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM acme.eab_keys ORDER BY created_at DESC, id"  # noqa: S608
    )
    return [_key(row) for row in rows]


async def revoke(pool: asyncpg.Pool, key_id: str, now: datetime) -> tuple[EabKey, bool] | None:
    """Revoke ``key_id``: (the key, whether this call revoked it); None if unknown. The account
    it bound keeps working (deactivate it to stop it)."""
    row = await pool.fetchrow(
        f"""
        WITH revoked AS (
            UPDATE acme.eab_keys SET revoked_at = $2
            WHERE id = $1 AND revoked_at IS NULL RETURNING {_COLUMNS}
        )
        SELECT true AS now_revoked, * FROM revoked
        UNION ALL
        SELECT false, {_COLUMNS} FROM acme.eab_keys
        WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM revoked)
        """,  # noqa: S608 (constant columns)
        key_id,
        now,
    )
    return (_key(row), bool(row["now_revoked"])) if row is not None else None


@dataclass(frozen=True, slots=True)
class Binding:
    bound: bool
    known: bool
    revoked: bool


# Bind the key ($1) to the account just created ($2) if it is live and unused, and record the
# key on the account, in one statement. Two newAccount requests racing for one key: the second
# UPDATE waits for the first, re-checks `account_id IS NULL`, and binds nothing.
_BIND = """
    WITH bound AS (
        UPDATE acme.eab_keys SET account_id = $2, bound_at = $3
        WHERE id = $1 AND revoked_at IS NULL AND account_id IS NULL
        RETURNING id
    ), marked AS (
        UPDATE acme.accounts SET eab_key_id = $1
        WHERE id = $2 AND EXISTS (SELECT 1 FROM bound)
        RETURNING 1
    ), key AS (
        SELECT revoked_at FROM acme.eab_keys WHERE id = $1
    )
    SELECT EXISTS (SELECT 1 FROM marked) AS bound,
           EXISTS (SELECT 1 FROM key) AS known,
           EXISTS (SELECT 1 FROM key WHERE revoked_at IS NOT NULL) AS revoked
"""


async def bind(
    connection: PoolConnectionProxy, key_id: str, account_id: str, now: datetime
) -> Binding:
    """Bind ``key_id`` to ``account_id``, inside the transaction that created the account."""
    row = await connection.fetchrow(_BIND, key_id, account_id, now)
    assert row is not None
    return Binding(row["bound"], row["known"], row["revoked"])
