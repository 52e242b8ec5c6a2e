"""The renewal window of an enrollment policy (docs/profiles.md, "Re-enrollment"): when the
device last got a certificate of that policy."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def last_issued(
    pool: asyncpg.Pool, *, device_serial: str, policy: str, order_id: str
) -> datetime | None:
    """When the newest valid certificate of ``policy`` was issued to the device, other than
    the one of ``order_id`` (a redelivered order is not a re-enrollment). Revoked ones do not
    count: a device whose certificate was revoked may enroll again at once."""
    value: datetime | None = await pool.fetchval(
        """
        SELECT max(created_at) FROM pki.certificates
         WHERE device_serial = $1 AND status = 'valid' AND order_id <> $3
           AND record->>'enrollment_policy' = $2
        """,
        device_serial,
        policy,
        order_id,
    )
    return value
