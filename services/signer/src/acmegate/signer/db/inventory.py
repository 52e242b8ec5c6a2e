"""The certificate inventory of the ``pki`` schema: finding, listing and counting certificates
(the CLI, the admin API, OCSP)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import msgspec
from cryptography import x509

from acmegate.common.messages import EnrollmentRecord
from acmegate.common.vocabulary import CertificateStatus, RevocationReason
from acmegate.signer.serials import parse_serial

_COLUMNS = """
    serial, order_id, ca_name, template, account_id, identifier_type, identifier_value,
    device_serial, status, not_before, not_after, der, chain_pem, record::text AS record_json,
    created_at, revoked_at, revocation_reason
"""


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
    status: CertificateStatus
    not_before: datetime
    not_after: datetime
    der: bytes
    chain_pem: str
    record: EnrollmentRecord | None
    created_at: datetime
    revoked_at: datetime | None
    revocation_reason: RevocationReason | None

    def certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.der)


def _record(row: asyncpg.Record) -> CertificateRecord:
    values: dict[str, Any] = dict(row)
    record_json = values.pop("record_json")
    values["record"] = (
        msgspec.json.decode(record_json, type=EnrollmentRecord) if record_json else None
    )
    values["status"] = CertificateStatus(values["status"])
    reason = values["revocation_reason"]
    values["revocation_reason"] = RevocationReason(reason) if reason is not None else None
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
    status: CertificateStatus | None = None,
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


@dataclass(frozen=True)
class RevocationStatus:
    """What OCSP says about one certificate (RFC 6960 §2.2)."""

    status: CertificateStatus
    revoked_at: datetime | None
    revocation_reason: RevocationReason | None


async def certificate_status(
    pool: asyncpg.Pool, ca_name: str, serial: str
) -> RevocationStatus | None:
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
    reason = row["revocation_reason"]
    return RevocationStatus(
        CertificateStatus(row["status"]),
        row["revoked_at"],
        RevocationReason(reason) if reason is not None else None,
    )


async def count_certificates(pool: asyncpg.Pool, now: datetime) -> list[tuple[str, str, int]]:
    """(CA, status, count) per CA and status (``expired``: valid but past notAfter), signed
    certificates only."""
    rows = await pool.fetch(
        """
        SELECT ca_name,
               CASE WHEN status = 'valid' AND not_after <= $1 THEN 'expired' ELSE status END
                   AS shown_status,
               count(*) AS n
        FROM pki.certificates WHERE der IS NOT NULL
        GROUP BY 1, 2 ORDER BY 1, 2
        """,
        now,
    )
    return [(row["ca_name"], row["shown_status"], row["n"]) for row in rows]
