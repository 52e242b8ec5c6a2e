"""Accounts (RFC 8555 §7.3) and nonce redemption, which rides along with the account lookup.

Each authenticated request costs one statement here: the nonce is inserted into
``acme.used_nonces`` (a primary-key hit means a replay) in the same statement that loads the
account by id (``kid``) or by key thumbprint (``jwk``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from acmegate.frontend.db import rate_limits as limit_sql
from acmegate.frontend.nonces import RedeemableNonce
from acmegate.frontend.rate_limits import Limit
from acmegate.frontend.status import AccountStatus


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    thumbprint: str
    jwk: dict[str, Any]
    status: AccountStatus
    contact: list[str]
    terms_agreed: bool


@dataclass(frozen=True, slots=True)
class Redeemed:
    """The outcome of a nonce redemption and the account it came with, if any."""

    fresh: bool
    account: Account | None


_COLUMNS = "a.id, a.thumbprint, a.jwk, a.status, a.contact, a.terms_agreed"


def _account(row: asyncpg.Record | None) -> Account | None:
    if row is None or row["id"] is None:
        return None
    return Account(
        id=row["id"],
        thumbprint=row["thumbprint"],
        jwk=row["jwk"],
        status=AccountStatus(row["status"]),
        contact=row["contact"],
        terms_agreed=row["terms_agreed"],
    )


# One statement per lookup key; the key column is chosen from this table, never from input.
_REDEEM = {
    column: f"""
        WITH used AS (
            INSERT INTO acme.used_nonces (id, expires) VALUES ($1, $2)
            ON CONFLICT DO NOTHING RETURNING 1
        )
        SELECT EXISTS (SELECT 1 FROM used) AS fresh, {_COLUMNS}
        FROM (SELECT 1) AS one LEFT JOIN acme.accounts a ON a.{column} = $3
        """  # noqa: S608 (constant column names only)
    for column in ("id", "thumbprint")
}


async def _redeem(pool: asyncpg.Pool, nonce: RedeemableNonce, column: str, value: str) -> Redeemed:
    row = await pool.fetchrow(_REDEEM[column], nonce.id, nonce.expires, value)
    assert row is not None
    return Redeemed(row["fresh"], _account(row))


async def redeem_with_account(
    pool: asyncpg.Pool, nonce: RedeemableNonce, account_id: str
) -> Redeemed:
    """Use ``nonce`` and load the account a ``kid`` names, in one round trip."""
    return await _redeem(pool, nonce, "id", account_id)


async def redeem_with_key(pool: asyncpg.Pool, nonce: RedeemableNonce, thumbprint: str) -> Redeemed:
    """Use ``nonce`` and load the account of the key in a ``jwk`` header, in one round trip."""
    return await _redeem(pool, nonce, "thumbprint", thumbprint)


@dataclass(frozen=True, slots=True)
class Created:
    """What :func:`create` found: the stored account (None: the rate limit refused a new one),
    whether it is new, and the limit's ``tat`` when it refused."""

    account: Account | None
    created: bool
    limit_tat: datetime | None = None


# Insert unless the key already has an account; with a limit, only if the client's budget
# allows one more account (rate_limits.py), in the same statement. Exactly one row comes back.
_CREATE = """
    WITH {taken}created AS (
        INSERT INTO acme.accounts (id, thumbprint, jwk, status, contact, terms_agreed)
        SELECT $1, $2, $3, 'valid', $4, $5 FROM {source}
        ON CONFLICT (thumbprint) DO NOTHING
        RETURNING *
    )
    SELECT {limit_tat} AS limit_tat, found.*
    FROM (SELECT 1) AS one LEFT JOIN (
        SELECT true AS created, {columns} FROM created a
        UNION ALL
        SELECT false AS created, {columns} FROM acme.accounts a
        WHERE a.thumbprint = $2 AND NOT EXISTS (SELECT 1 FROM created)
    ) AS found ON true
"""
# The limit's parameters: $6 name, $7 emission, $8 tolerance, $9 client subject, $10 now.
_LIMIT = limit_sql.Slots("$6", "$7", "$8")
_CREATE_UNLIMITED = _CREATE.format(
    taken="", source="(SELECT 1) AS one", limit_tat="NULL::timestamptz", columns=_COLUMNS
)
_CREATE_LIMITED = _CREATE.format(
    taken=limit_sql.take_cte("taken", _LIMIT, subject="$9", now="$10", source="(SELECT 1) AS one")
    + ", ",
    source="taken",
    limit_tat=f"""CASE WHEN NOT EXISTS (SELECT 1 FROM taken)
                  THEN {limit_sql.tat_select(_LIMIT, subject="$9")} END""",  # noqa: S608
    columns=_COLUMNS,
)


async def create(
    pool: asyncpg.Pool,
    account: Account,
    *,
    limit: Limit | None = None,
    client: str = "",
    now: datetime | None = None,
) -> Created:
    """Insert ``account`` unless its key already has one, within ``limit`` for ``client``."""
    values = (
        account.id,
        account.thumbprint,
        account.jwk,
        account.contact,
        account.terms_agreed,
    )
    if limit is None:
        row = await pool.fetchrow(_CREATE_UNLIMITED, *values)
    else:
        row = await pool.fetchrow(
            _CREATE_LIMITED, *values, *limit_sql.slot_values(limit), client, now
        )
    assert row is not None
    stored = _account(row)
    return Created(stored, bool(stored and row["created"]), row["limit_tat"])


async def update(
    pool: asyncpg.Pool,
    account_id: str,
    *,
    contact: list[str] | None,
    deactivate: bool,
    terms_agreed: bool | None,
) -> Account | None:
    """Change contact / agree to terms / deactivate (only from `valid`, RFC 8555 §7.3.6)."""
    row = await pool.fetchrow(
        f"""
        UPDATE acme.accounts a SET
            contact = COALESCE($2, a.contact),
            terms_agreed = COALESCE($3, a.terms_agreed),
            status = CASE WHEN $4 THEN 'deactivated' ELSE a.status END
        WHERE a.id = $1 AND a.status = 'valid'
        RETURNING {_COLUMNS}
        """,  # noqa: S608 (only the constant column list is interpolated)
        account_id,
        contact,
        terms_agreed,
        deactivate,
    )
    return _account(row)


async def change_key(
    pool: asyncpg.Pool, account_id: str, old_thumbprint: str, jwk: dict[str, Any], thumbprint: str
) -> bool | None:
    """Replace the account key (RFC 8555 §7.3.5): True done, False key in use, None lost race."""
    try:
        result = await pool.execute(
            "UPDATE acme.accounts SET jwk = $3, thumbprint = $4 "
            "WHERE id = $1 AND thumbprint = $2 AND status = 'valid'",
            account_id,
            old_thumbprint,
            jwk,
            thumbprint,
        )
    except asyncpg.UniqueViolationError:
        return False
    return True if result.endswith(" 1") else None
