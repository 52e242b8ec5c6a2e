"""Idempotent issuance in the ``pki`` schema: one order, one certificate, whatever crashes.

Issuance is "reserve, sign, store" in ONE transaction (:func:`issue_once`), modelled on
Boulder's write-ahead rule (its CA stores the serial under a unique key, and a linting
certificate, before it signs; see Boulder's ``docs/ISSUANCE-CYCLE.md``): the unique key that
guards against a second certificate (here ``order_id``) is taken *before* the CA signs, and the
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

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import msgspec

from acmegate.common.messages import EnrollmentRecord

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
