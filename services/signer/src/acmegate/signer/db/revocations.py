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


async def supersede_certificates(
    pool: asyncpg.Pool,
    new_serial: str,
    *,
    policies: Sequence[str],
    reason: RevocationReason,
    at: datetime,
) -> list[str]:
    """Revoke the valid certificates the device of ``new_serial`` was issued before it under
    the same enrollment policy, when that policy is one of ``policies`` (those configured
    with ``previous_certificates: revoke``). Idempotent: the second call finds nothing valid.
    A certificate that is itself revoked supersedes nothing."""
    rows = await pool.fetch(
        """
        WITH new AS (
            SELECT serial, device_serial, created_at, record->>'enrollment_policy' AS policy
              FROM pki.certificates
             WHERE serial = $1 AND status = 'valid' AND device_serial IS NOT NULL
               AND record->>'enrollment_policy' = ANY($2::text[])
        ), revoked AS (
            UPDATE pki.certificates AS old
               SET status = 'revoked', revoked_at = $3, revocation_reason = $4
              FROM new
             WHERE old.device_serial = new.device_serial
               AND old.status = 'valid'
               AND old.serial <> new.serial
               AND old.created_at <= new.created_at
               AND old.record->>'enrollment_policy' = new.policy
            RETURNING old.serial, old.ca_name
        ), bumped AS (
            INSERT INTO pki.revocation_state AS state (ca_name, generation)
            SELECT ca_name, 1 FROM revoked GROUP BY ca_name
            ON CONFLICT (ca_name) DO UPDATE SET generation = state.generation + 1
        )
        SELECT serial, ca_name FROM revoked
        """,
        parse_serial(new_serial),
        list(policies),
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
