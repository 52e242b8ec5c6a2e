"""CRL storage in the ``pki`` schema: each CA's newest CRL, its revocation counter, and the
lock that lets one replica at a time publish (:mod:`acmegate.signer.crl_publisher` does)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from acmegate.common.vocabulary import RevocationReason

# A connection taken from the pool (the CRL functions run inside the publisher's transaction).
Connection = asyncpg.Connection | PoolConnectionProxy


@dataclass(frozen=True)
class CrlState:
    """A CA's newest CRL (if any) and its revocation counter, for the staleness check."""

    ca_name: str
    number: int | None
    this_update: datetime | None
    next_update: datetime | None
    covered_generation: int | None
    generation: int


@dataclass(frozen=True)
class RevokedEntry:
    serial: str
    revoked_at: datetime
    reason: RevocationReason


@dataclass(frozen=True)
class StoredCrl:
    ca_name: str
    number: int
    this_update: datetime
    next_update: datetime
    entries: int
    der: bytes


_CRL_STATE = """
SELECT names.ca_name, latest.number, latest.this_update, latest.next_update,
       latest.generation AS covered_generation, coalesce(state.generation, 0) AS generation
FROM unnest($1::text[]) AS names (ca_name)
LEFT JOIN LATERAL (
    SELECT number, this_update, next_update, generation FROM pki.crls
    WHERE ca_name = names.ca_name ORDER BY number DESC LIMIT 1
) AS latest ON true
LEFT JOIN pki.revocation_state AS state ON state.ca_name = names.ca_name
"""


async def crl_states(
    connection: asyncpg.Pool | Connection, ca_names: Sequence[str]
) -> list[CrlState]:
    """For each CA: its newest CRL and current revocation counter (one indexed query)."""
    rows = await connection.fetch(_CRL_STATE, list(ca_names))
    return [CrlState(**dict(row)) for row in rows]


async def lock_crl(connection: Connection, ca_name: str) -> bool:
    """Take the CA's CRL lock for this transaction; False if another replica holds it."""
    locked: bool = await connection.fetchval(
        "SELECT pg_try_advisory_xact_lock(hashtextextended('acmegate.pki.crl:' || $1, 0))",
        ca_name,
    )
    return locked


async def revoked_entries(
    connection: Connection, ca_name: str, *, now: datetime
) -> list[RevokedEntry]:
    """The CA's revoked certificates that have not expired (RFC 5280 §3.3: an expired
    certificate may leave the CRL), oldest revocation first."""
    rows = await connection.fetch(
        """
        SELECT serial, revoked_at, revocation_reason FROM pki.certificates
        WHERE ca_name = $1 AND status = 'revoked' AND not_after > $2
        ORDER BY revoked_at, serial
        """,
        ca_name,
        now,
    )
    return [
        RevokedEntry(r["serial"], r["revoked_at"], RevocationReason(r["revocation_reason"]))
        for r in rows
    ]


async def store_crl(
    connection: Connection,
    crl: StoredCrl,
    *,
    generation: int,
    keep: int = 20,
) -> bool:
    """Insert a new CRL (False if its number was taken meanwhile) and prune old ones."""
    inserted = await connection.fetchval(
        """
        INSERT INTO pki.crls (ca_name, number, this_update, next_update, generation, entries, der)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (ca_name, number) DO NOTHING
        RETURNING true
        """,
        crl.ca_name,
        crl.number,
        crl.this_update,
        crl.next_update,
        generation,
        crl.entries,
        crl.der,
    )
    if not inserted:
        return False
    await connection.execute(
        "DELETE FROM pki.crls WHERE ca_name = $1 AND number <= $2",
        crl.ca_name,
        crl.number - keep,
    )
    return True


async def latest_crl(pool: asyncpg.Pool, ca_name: str) -> StoredCrl | None:
    """The CA's newest CRL, as every replica serves it."""
    row = await pool.fetchrow(
        """
        SELECT ca_name, number, this_update, next_update, entries, der FROM pki.crls
        WHERE ca_name = $1 ORDER BY number DESC LIMIT 1
        """,
        ca_name,
    )
    return StoredCrl(**dict(row)) if row is not None else None
