"""Delivered certificates as ARI (RFC 9773) needs them: found by serial, with the identifiers
of their order and whether an order replacing them was fulfilled."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
from cryptography import x509

from acmegate.common.messages import Identifier
from acmegate.frontend.db.gate import Checked, Gate, check, gated

Pool = asyncpg.Pool


@dataclass(frozen=True, slots=True)
class Delivered:
    id: str
    account_id: str
    leaf: x509.Certificate
    revoked: bool
    identifiers: list[Identifier]
    # An order naming it in `replaces` became valid (RFC 9773 §5: "marked as replaced").
    replaced: bool


def _identifiers(value: Any) -> list[Identifier]:
    return [Identifier(i["type"], i["value"]) for i in value]


_BY_SERIAL = """
        SELECT c.id, c.account_id, c.chain_pem, c.revoked_at IS NOT NULL AS revoked,
               o.identifiers,
               EXISTS (
                   SELECT 1 FROM acme.orders r WHERE r.replaces = c.id AND r.status = 'valid'
               ) AS replaced
        FROM acme.certificates c JOIN acme.orders o ON o.id = c.order_id
        WHERE c.serial = $1
"""


async def find_by_serial(pool: Pool, serial: str, gate: Gate | Checked) -> Delivered | None:
    """The certificate this frontend delivered with ``serial`` (lower-case hex), if any; the
    request's first statement when ``gate`` is a :class:`Gate` (db/gate.py)."""
    sql, params = gated(_BY_SERIAL, [serial], gate)
    row = await pool.fetchrow(sql, *params)
    check(row, gate)
    if row is None or row["id"] is None:
        return None
    leaf = x509.load_pem_x509_certificate(row["chain_pem"].encode("ascii"))
    return Delivered(
        row["id"],
        row["account_id"],
        leaf,
        row["revoked"],
        _identifiers(row["identifiers"]),
        row["replaced"],
    )


async def record_replaces(pool: Pool, order_id: str, certificate_id: str) -> None:
    """Remember which certificate the order ``order_id`` replaces."""
    await pool.execute(
        "UPDATE acme.orders SET replaces = $2 WHERE id = $1", order_id, certificate_id
    )
