"""Accounts (RFC 8555 §7.3) and nonce redemption, which rides along with the account lookup.

Each authenticated request costs one statement here: the nonce is inserted into
``acme.used_nonces`` (a primary-key hit means a replay) in the same statement that loads the
account by id (``kid``) or by key thumbprint (``jwk``); newAccount's statement also creates
the account when its key has none (:func:`register`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

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
    # The EAB key that created the account (RFC 8555 §7.3.4); never changes.
    eab_key_id: str | None = None


@dataclass(frozen=True, slots=True)
class Redeemed:
    """The outcome of a nonce redemption and the account it came with, if any."""

    fresh: bool
    account: Account | None


_COLUMNS = "a.id, a.thumbprint, a.jwk, a.status, a.contact, a.terms_agreed, a.eab_key_id"


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
        eab_key_id=row["eab_key_id"],
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
class Registered:
    """What :func:`register` found: whether the nonce was fresh, the key's account (None:
    none, and none was created), whether it is new, and the limit's ``tat`` if it refused."""

    fresh: bool
    account: Account | None
    created: bool
    limit_tat: datetime | None = None


# newAccount in one statement: redeem the nonce, look the key up, and insert the candidate
# account ($4: whether there is one) only if the nonce was fresh and the key has no account,
# within the client's budget when limited. Exactly one row comes back.
# $1 nonce id, $2 nonce expiry, $3 thumbprint, $4 create, $5..$8 the new account's id, jwk,
# contact, terms agreed; with a limit: $9 name, $10 emission, $11 tolerance, $12 client,
# $13 now.
_REGISTER = """
    WITH used AS (
        INSERT INTO acme.used_nonces (id, expires) VALUES ($1, $2)
        ON CONFLICT DO NOTHING RETURNING 1
    ), existing AS (
        SELECT {columns} FROM acme.accounts a WHERE a.thumbprint = $3
    ), wanted AS (
        SELECT 1 WHERE $4 AND EXISTS (SELECT 1 FROM used) AND NOT EXISTS (SELECT 1 FROM existing)
    ), {taken}created AS (
        INSERT INTO acme.accounts (id, thumbprint, jwk, status, contact, terms_agreed)
        SELECT $5, $3, $6, 'valid', $7, $8 FROM {source}
        ON CONFLICT (thumbprint) DO NOTHING
        RETURNING *
    )
    SELECT EXISTS (SELECT 1 FROM used) AS fresh, {limit_tat} AS limit_tat, found.*
    FROM (SELECT 1) AS one LEFT JOIN (
        SELECT true AS created, {columns} FROM created a
        UNION ALL
        SELECT false AS created, * FROM existing
    ) AS found ON true
"""
_REGISTER_LIMIT = limit_sql.Slots("$9", "$10", "$11")
_REGISTER_UNLIMITED = _REGISTER.format(
    taken="", source="wanted", limit_tat="NULL::timestamptz", columns=_COLUMNS
)
_REGISTER_LIMITED = _REGISTER.format(
    taken=limit_sql.take_cte("taken", _REGISTER_LIMIT, subject="$12", now="$13", source="wanted")
    + ", ",
    source="taken",
    limit_tat=f"""CASE WHEN EXISTS (SELECT 1 FROM wanted) AND NOT EXISTS (SELECT 1 FROM taken)
                  THEN {limit_sql.tat_select(_REGISTER_LIMIT, subject="$12")} END""",  # noqa: S608
    columns=_COLUMNS,
)


async def register(
    pool: asyncpg.Pool | PoolConnectionProxy,
    nonce: RedeemableNonce,
    thumbprint: str,
    candidate: Account | None,
    *,
    limit: Limit | None,
    client: str,
    now: datetime,
) -> Registered:
    """Redeem ``nonce`` and return the account of the key ``thumbprint``, creating
    ``candidate`` (within ``limit`` for ``client``) if it has none, in one statement."""
    values: list[object] = [
        nonce.id,
        nonce.expires,
        thumbprint,
        candidate is not None,
        candidate.id if candidate else None,
        candidate.jwk if candidate else None,
        candidate.contact if candidate else None,
        candidate.terms_agreed if candidate else None,
    ]
    if limit is None:
        row = await pool.fetchrow(_REGISTER_UNLIMITED, *values)
    else:
        row = await pool.fetchrow(
            _REGISTER_LIMITED, *values, *limit_sql.slot_values(limit), client, now
        )
    assert row is not None
    stored = _account(row)
    if stored is None and row["fresh"] and candidate is not None and row["limit_tat"] is None:
        # Another request created this key's account at the same moment (ours met it on the
        # unique key, after this statement's snapshot): read it.
        found = await pool.fetchrow(
            f"SELECT false AS created, {_COLUMNS} FROM acme.accounts a WHERE a.thumbprint = $1",  # noqa: S608
            thumbprint,
        )
        return Registered(True, _account(found), False)
    return Registered(row["fresh"], stored, bool(stored and row["created"]), row["limit_tat"])


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
