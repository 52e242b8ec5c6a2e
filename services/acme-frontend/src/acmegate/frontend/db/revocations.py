"""Delivered certificates as revokeCert (RFC 8555 §7.6) needs them: found by serial, and a
compare-and-set that records the revocation once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True, slots=True)
class DeliveredCertificate:
    id: str
    account_id: str
    serial: str
    chain_pem: str
    revoked_at: datetime | None


async def find_by_serial(pool: asyncpg.Pool, serial: str) -> DeliveredCertificate | None:
    """The certificate this frontend delivered with ``serial`` (lower-case hex), if any."""
    row = await pool.fetchrow(
        """
        SELECT id, account_id, serial, chain_pem, revoked_at FROM acme.certificates
        WHERE serial = $1
        """,
        serial,
    )
    if row is None:
        return None
    return DeliveredCertificate(
        row["id"], row["account_id"], row["serial"], row["chain_pem"], row["revoked_at"]
    )


async def mark_revoked(
    pool: asyncpg.Pool, certificate_id: str, *, reason: int, at: datetime
) -> bool:
    """``not revoked → revoked``; False if it was revoked already (by this or another request)."""
    changed = await pool.fetchval(
        """
        UPDATE acme.certificates SET revoked_at = $2, revocation_reason = $3
        WHERE id = $1 AND revoked_at IS NULL
        RETURNING true
        """,
        certificate_id,
        at,
        reason,
    )
    return bool(changed)


async def record_revoked_serial(
    pool: asyncpg.Pool, serial: str, *, reason: int, at: datetime
) -> None:
    """Note a revocation made elsewhere (the admin API, through the signer), so that renewal
    information (RFC 9773) tells the client to renew at once."""
    await pool.execute(
        """
        UPDATE acme.certificates SET revoked_at = $2, revocation_reason = $3
        WHERE serial = $1 AND revoked_at IS NULL
        """,
        serial,
        at,
        reason,
    )
