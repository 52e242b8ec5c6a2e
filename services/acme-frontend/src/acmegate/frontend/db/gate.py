"""Request checks deferred into the request's first statement (one round trip fewer).

When a ``kid`` request's signature verifies with a cached account key, what remains to check
needs the database: that the nonce was never used (RFC 8555 §6.5) and that the account is
still valid with that key (it may have been deactivated, or its key changed, on another
replica). :func:`gated` wraps the request's first read so that one statement redeems the nonce,
checks the account, and reads; :func:`check` turns the two flags into the right problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.frontend.nonces import RedeemableNonce, bad_nonce


@dataclass(frozen=True, slots=True)
class Gate:
    nonce: RedeemableNonce
    account_id: str
    thumbprint: str


class StaleAccount(AcmeError):
    """The cached account is no longer valid with that key (the middleware forgets it)."""

    def __init__(self, account_id: str) -> None:
        super().__init__(ErrorKind.UNAUTHORIZED, "account is no longer valid with this key")
        self.account_id = account_id


def gated(query: str, params: Sequence[object], gate: Gate | None) -> tuple[str, list[object]]:
    """``query`` (a SELECT) wrapped with the gate's checks; its rows gain ``gate_fresh`` and
    ``gate_account``, and a query without rows yields one row of NULLs (so the flags arrive)."""
    if gate is None:
        return query, list(params)
    n = len(params)
    sql = f"""
        WITH gate_used AS (
            INSERT INTO acme.used_nonces (id, expires) VALUES (${n + 1}, ${n + 2})
            ON CONFLICT DO NOTHING RETURNING 1
        )
        SELECT EXISTS (SELECT 1 FROM gate_used) AS gate_fresh,
               EXISTS (
                   SELECT 1 FROM acme.accounts
                   WHERE id = ${n + 3} AND thumbprint = ${n + 4} AND status = 'valid'
               ) AS gate_account,
               gated.*
        FROM (SELECT 1) AS gate_one LEFT JOIN ({query}) AS gated ON true
    """  # noqa: S608 (composes constant query texts only)
    return sql, [*params, gate.nonce.id, gate.nonce.expires, gate.account_id, gate.thumbprint]


def check(row: asyncpg.Record | None, gate: Gate | None) -> None:
    """Raise what the gate found: a replayed nonce, or an account no longer valid."""
    if gate is None or row is None:
        return
    if not row["gate_fresh"]:
        raise bad_nonce()
    if not row["gate_account"]:
        raise StaleAccount(gate.account_id)
