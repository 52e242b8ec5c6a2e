"""Revocation in the ``pki`` schema: every path (the bus, the CLI, the admin API) comes through
:func:`revoke_certificates`, which also moves the CA's revocation counter that tells the CRL
publisher of any replica that its CRL is stale."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from acmegate.common import metrics
from acmegate.common.vocabulary import RevocationReason
from acmegate.signer.db.inventory import CertificateRecord, find_certificate
from acmegate.signer.serials import parse_serial


async def revoke_certificates(
    pool: asyncpg.Pool,
    *,
    serials: Sequence[str] = (),
    device_serial: str | None = None,
    reason: RevocationReason,
    at: datetime,
) -> list[str]:
    """Mark the listed serials, and every valid certificate of ``device_serial``, revoked.

    With ``device_serial`` given, a listed serial is revoked only if it was issued to that
    device: whoever names a device (the RADIUS check, the re-check) never revokes a serial of
    another one. Idempotent: a certificate already revoked keeps its first time and reason.
    Returns the serials revoked by this call. Every revocation path (the bus, the CLI, the
    admin API) comes through here: the same statement moves the CA's
    ``pki.revocation_state`` counter, which is how the CRL publisher of any replica learns
    that the CRL is stale.
    """
    rows = await pool.fetch(
        """
        WITH revoked AS (
            UPDATE pki.certificates
               SET status = 'revoked', revoked_at = $3, revocation_reason = $4
             WHERE status = 'valid'
               AND (serial = ANY($1::text[]) OR device_serial = $2)
               AND ($2::text IS NULL OR device_serial = $2)
            RETURNING serial, ca_name
        ), bumped AS (
            INSERT INTO pki.revocation_state AS state (ca_name, generation)
            SELECT ca_name, 1 FROM revoked GROUP BY ca_name
            ON CONFLICT (ca_name) DO UPDATE SET generation = state.generation + 1
        )
        SELECT serial, ca_name FROM revoked
        """,
        [parse_serial(s) for s in serials],
        device_serial,
        at,
        reason,
    )
    for row in rows:
        metrics.certificates_revoked(row["ca_name"], reason).inc()
    return [row["serial"] for row in rows]


@dataclass(frozen=True)
class RevocationOutcome:
    """What :func:`revoke_certificate` did to one certificate."""

    certificate: CertificateRecord
    # False: it was revoked before (``certificate`` shows when and why).
    revoked_now: bool


async def revoke_certificate(
    pool: asyncpg.Pool, serial: str, *, reason: RevocationReason, at: datetime
) -> RevocationOutcome | None:
    """Revoke one certificate by serial (any hex form); ``None`` if no such certificate."""
    try:
        normalised = parse_serial(serial)
    except ValueError:
        return None
    revoked = await revoke_certificates(pool, serials=[normalised], reason=reason, at=at)
    found = await find_certificate(pool, normalised)
    if found is None:
        return None
    return RevocationOutcome(found, revoked_now=bool(revoked))
