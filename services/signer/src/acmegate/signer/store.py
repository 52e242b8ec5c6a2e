"""The ``pki`` schema: the certificate inventory, idempotent issuance and revocation.

Issuance is "reserve, sign, store" in ONE transaction (:func:`issue_once`), modelled on
Boulder's write-ahead rule (acme-anchors.md §1.4, §6.1, §7.2): the unique key that guards
against a second certificate (here ``order_id``) is taken *before* the CA signs, and the
certificate is stored *after*, so one order never maps to two certificates and a retry after
any failure starts over with a new serial.

We keep the reservation inside the transaction rather than committing it first (Boulder
commits its serial and linting certificate, because its precertificate leaves the process for
CT logs before the final certificate is stored). Here nothing leaves the process before the
commit: the certificate is published only after it. So:

- a crash before the commit rolls the reservation back; the signature made, if any, never left
  memory, and the redelivered message signs afresh (new serial) with nothing to clean up;
- a second copy of the message, handled at the same moment by another replica, blocks in its
  ``INSERT ... ON CONFLICT (order_id) DO NOTHING`` on the first one's uncommitted row, and once
  that commits it finds the certificate and replies with it: one signature, no lease, no
  polling, no reservation left behind to expire;
- the common path is four round trips (BEGIN, INSERT, UPDATE, COMMIT) on one connection held
  for the duration of one signature (well under a millisecond for ECDSA/RSA-2048); a
  committed reservation (Boulder's way) would save BEGIN/COMMIT but need a lease, a takeover
  rule and a sweeper for reservations whose signer died.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import msgspec
from asyncpg.pool import PoolConnectionProxy
from cryptography import x509

from acmegate.common.messages import EnrollmentRecord
from acmegate.signer.serials import parse_serial

_COLUMNS = """
    serial, order_id, ca_name, template, account_id, identifier_type, identifier_value,
    device_serial, status, not_before, not_after, der, chain_pem, record::text AS record_json,
    created_at, revoked_at, revocation_reason
"""

_RESERVE = """
INSERT INTO pki.certificates (
    serial, order_id, ca_name, template, account_id, identifier_type, identifier_value,
    device_serial, not_before, not_after, record
) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::text::jsonb)
ON CONFLICT (order_id) DO NOTHING
RETURNING serial
"""
_STORE = "UPDATE pki.certificates SET der = $2, chain_pem = $3 WHERE serial = $1"
_BY_ORDER = "SELECT serial, chain_pem FROM pki.certificates WHERE order_id = $1"


@dataclass(frozen=True)
class PendingCertificate:
    """What is known of a certificate before it is signed (its reservation row)."""

    serial: str
    order_id: str
    ca_name: str
    template: str
    account_id: str
    identifier_type: str | None
    identifier_value: str | None
    device_serial: str | None
    not_before: datetime
    not_after: datetime
    record: EnrollmentRecord | None


@dataclass(frozen=True)
class SignedCertificate:
    """What :func:`issue_once` hands back (the same for every copy of one order)."""

    serial: str
    chain_pem: str
    # True when this call signed it; False when an earlier or concurrent copy did.
    fresh: bool


# Signs the reserved certificate; returns its DER and the full PEM chain (leaf first).
Signer = Callable[[], Awaitable[tuple[bytes, str]]]


async def issue_once(
    pool: asyncpg.Pool, pending: PendingCertificate, sign: Signer
) -> SignedCertificate:
    """Sign and store ``pending`` unless its order already has a certificate (module doc)."""
    record_json = (
        msgspec.json.encode(pending.record).decode("utf-8") if pending.record is not None else None
    )
    async with pool.acquire() as connection, connection.transaction():
        reserved = await connection.fetchval(
            _RESERVE,
            pending.serial,
            pending.order_id,
            pending.ca_name,
            pending.template,
            pending.account_id,
            pending.identifier_type,
            pending.identifier_value,
            pending.device_serial,
            pending.not_before,
            pending.not_after,
            record_json,
        )
        if reserved is None:
            # The order has a certificate: committed earlier, or by the transaction we just
            # waited for on the unique index. A new statement sees it (READ COMMITTED).
            row = await connection.fetchrow(_BY_ORDER, pending.order_id)
            if row is None or row["chain_pem"] is None:
                raise RuntimeError(f"order {pending.order_id}: conflicting row vanished")
            return SignedCertificate(row["serial"], row["chain_pem"], fresh=False)
        der, chain_pem = await sign()
        await connection.execute(_STORE, pending.serial, der, chain_pem)
    return SignedCertificate(pending.serial, chain_pem, fresh=True)


@dataclass(frozen=True)
class CertificateRecord:
    """One row of ``pki.certificates``, for the CLI and the admin API."""

    serial: str
    order_id: str
    ca_name: str
    template: str
    account_id: str
    identifier_type: str | None
    identifier_value: str | None
    device_serial: str | None
    status: str
    not_before: datetime
    not_after: datetime
    der: bytes
    chain_pem: str
    record: EnrollmentRecord | None
    created_at: datetime
    revoked_at: datetime | None
    revocation_reason: str | None

    def certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.der)


def _record(row: asyncpg.Record) -> CertificateRecord:
    values: dict[str, Any] = dict(row)
    record_json = values.pop("record_json")
    values["record"] = (
        msgspec.json.decode(record_json, type=EnrollmentRecord) if record_json else None
    )
    return CertificateRecord(**values)


async def find_certificate(pool: asyncpg.Pool, serial: str) -> CertificateRecord | None:
    """The certificate with ``serial`` (hex, any case, colons allowed), or ``None``."""
    try:
        normalised = parse_serial(serial)
    except ValueError:
        return None
    row = await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM pki.certificates WHERE serial = $1",  # noqa: S608
        normalised,
    )
    return _record(row) if row is not None else None


async def find_certificate_for_order(pool: asyncpg.Pool, order_id: str) -> CertificateRecord | None:
    """The certificate issued for ``order_id``, or ``None``."""
    row = await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM pki.certificates WHERE order_id = $1",  # noqa: S608
        order_id,
    )
    return _record(row) if row is not None else None


async def list_certificates(
    pool: asyncpg.Pool,
    *,
    device_serial: str | None = None,
    status: str | None = None,
    ca_name: str | None = None,
    account_id: str | None = None,
    limit: int = 100,
) -> list[CertificateRecord]:
    """The newest certificates matching every filter given, at most ``limit``."""
    # Only fixed fragments are joined; values travel as parameters. A WHERE clause per
    # combination (rather than "$1 IS NULL OR ...") lets PostgreSQL use the matching index.
    conditions = ["true"]
    arguments: list[object] = []
    for column, value in (
        ("device_serial", device_serial),
        ("status", status),
        ("ca_name", ca_name),
        ("account_id", account_id),
    ):
        if value is not None:
            arguments.append(value)
            conditions.append(f"{column} = ${len(arguments)}")
    arguments.append(max(1, min(limit, 10_000)))
    query = (
        f"SELECT {_COLUMNS} FROM pki.certificates WHERE {' AND '.join(conditions)} "  # noqa: S608
        f"ORDER BY created_at DESC, serial LIMIT ${len(arguments)}"
    )
    return [_record(row) for row in await pool.fetch(query, *arguments)]


async def revoke_certificates(
    pool: asyncpg.Pool,
    *,
    serials: Sequence[str] = (),
    device_serial: str | None = None,
    reason: str,
    at: datetime,
) -> list[str]:
    """Mark the listed serials, and every valid certificate of ``device_serial``, revoked.

    Idempotent: a certificate already revoked keeps its first time and reason. Returns the
    serials revoked by this call. Every revocation path (the bus, the CLI, the admin API)
    comes through here: the same statement moves the CA's ``pki.revocation_state`` counter,
    which is how the CRL publisher of any replica learns that the CRL is stale.
    """
    rows = await pool.fetch(
        """
        WITH revoked AS (
            UPDATE pki.certificates
               SET status = 'revoked', revoked_at = $3, revocation_reason = $4
             WHERE status = 'valid'
               AND (serial = ANY($1::text[]) OR device_serial = $2)
            RETURNING serial, ca_name
        ), bumped AS (
            INSERT INTO pki.revocation_state AS state (ca_name, generation)
            SELECT ca_name, 1 FROM revoked GROUP BY ca_name
            ON CONFLICT (ca_name) DO UPDATE SET generation = state.generation + 1
        )
        SELECT serial FROM revoked
        """,
        [parse_serial(s) for s in serials],
        device_serial,
        at,
        reason,
    )
    return [row["serial"] for row in rows]


@dataclass(frozen=True)
class RevocationOutcome:
    """What :func:`revoke_certificate` did to one certificate."""

    certificate: CertificateRecord
    # False: it was revoked before (``certificate`` shows when and why).
    revoked_now: bool


async def revoke_certificate(
    pool: asyncpg.Pool, serial: str, *, reason: str, at: datetime
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


@dataclass(frozen=True)
class CertificateStatus:
    """What OCSP says about one certificate (RFC 6960 §2.2)."""

    status: str  # valid | revoked
    revoked_at: datetime | None
    revocation_reason: str | None


async def certificate_status(
    pool: asyncpg.Pool, ca_name: str, serial: str
) -> CertificateStatus | None:
    """The status of the certificate ``ca_name`` issued with ``serial`` (stored form), or
    ``None`` if it issued none (OCSP ``unknown``)."""
    row = await pool.fetchrow(
        "SELECT status, revoked_at, revocation_reason FROM pki.certificates "
        "WHERE serial = $1 AND ca_name = $2 AND der IS NOT NULL",
        serial,
        ca_name,
    )
    if row is None:
        return None
    return CertificateStatus(row["status"], row["revoked_at"], row["revocation_reason"])


# --- CRLs ------------------------------------------------------------------------------------

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
    reason: str


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
    return [RevokedEntry(r["serial"], r["revoked_at"], r["revocation_reason"]) for r in rows]


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
