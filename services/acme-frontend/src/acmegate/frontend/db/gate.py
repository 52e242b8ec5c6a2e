"""Request checks deferred into the request's first statement (one round trip fewer).

When a ``kid`` request's signature verifies with a cached account key, what remains to check
needs the database: that the nonce was never used (RFC 8555 §6.5) and that the account is
still valid with that key (it may have been deactivated, or its key changed, on another
replica). :func:`gated` wraps the request's first read so that one statement redeems the nonce,
checks the account, and reads; :func:`check` turns the two flags into the right problem.

The rule is carried by types: a deferred request (``auth.DeferredRequest``) always holds a
gate, either a :class:`Gate` (checks still owed) or :data:`CHECKED` (authentication made them
already), and every read that can be a request's first statement requires one. A handler
therefore cannot reach the database without handing over what its nonce still owes; a read
that is not the first statement says so explicitly with :data:`CHECKED`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import asyncpg

from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.frontend.nonces import RedeemableNonce, bad_nonce


@dataclass(frozen=True, slots=True)
class Gate:
    """What a request still owes: redeeming ``nonce``, and its account still being valid
    with the key whose ``thumbprint`` verified the signature."""

    nonce: RedeemableNonce
    account_id: str
    thumbprint: str


class Checked:
    """Nothing left to check: the nonce was redeemed (and the account read) when the request
    was authenticated, or an earlier statement of the request did it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "CHECKED"


CHECKED: Final = Checked()


class StaleAccount(AcmeError):
    """The cached account is no longer valid with that key (the middleware forgets it)."""

    def __init__(self, account_id: str) -> None:
        super().__init__(ErrorKind.UNAUTHORIZED, "account is no longer valid with this key")
        self.account_id = account_id


def gated(query: str, params: Sequence[object], gate: Gate | Checked) -> tuple[str, list[object]]:
    """``query`` (a SELECT) wrapped with the gate's checks; its rows gain ``gate_fresh`` and
    ``gate_account``, and a query without rows yields one row of NULLs (so the flags arrive).
    With :data:`CHECKED`, ``query`` as it is."""
    if isinstance(gate, Checked):
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


def fenced(
    writes: str, outputs: str, query: str, params: Sequence[object], gate: Gate | Checked
) -> tuple[str, list[object]]:
    """Like :func:`gated`, for a request whose first statement also writes: ``writes`` (CTEs)
    must read ``gate_passed``, which holds one row only when the nonce was fresh and the
    account valid (always, with :data:`CHECKED`), so nothing is written for a replayed nonce
    or a stale account. ``outputs`` (columns, each followed by a comma) read the writes' CTEs;
    the rows of ``query`` follow, as with :func:`gated`."""
    n = len(params)
    if isinstance(gate, Checked):
        head, flags, extra = "gate_passed AS (SELECT 1)", "", []
    else:
        head = f"""gate_used AS (
            INSERT INTO acme.used_nonces (id, expires) VALUES (${n + 1}, ${n + 2})
            ON CONFLICT DO NOTHING RETURNING 1
        ), gate_account AS (
            SELECT 1 FROM acme.accounts
            WHERE id = ${n + 3} AND thumbprint = ${n + 4} AND status = 'valid'
        ), gate_passed AS (
            SELECT 1 WHERE EXISTS (SELECT 1 FROM gate_used) AND EXISTS (SELECT 1 FROM gate_account)
        )"""  # noqa: S608 (placeholders only)
        flags = """EXISTS (SELECT 1 FROM gate_used) AS gate_fresh,
               EXISTS (SELECT 1 FROM gate_account) AS gate_account,"""
        extra = [gate.nonce.id, gate.nonce.expires, gate.account_id, gate.thumbprint]
    sql = f"""
        WITH {head}, {writes}
        SELECT {flags} {outputs} gated.*
        FROM (SELECT 1) AS gate_one LEFT JOIN ({query}) AS gated ON true
    """  # noqa: S608 (composes constant query texts only)
    return sql, [*params, *extra]


def check(row: asyncpg.Record | None, gate: Gate | Checked) -> None:
    """Raise what the gate found: a replayed nonce, or an account no longer valid."""
    if isinstance(gate, Checked) or row is None:
        return
    if not row["gate_fresh"]:
        raise bad_nonce()
    if not row["gate_account"]:
        raise StaleAccount(gate.account_id)
