"""Orders, authorizations, challenges and delivered certificates (RFC 8555 §7.1.3–7.1.5).

Objects are read by id and the caller compares the owning account (an account sees only its
own objects). A device order has exactly one authorization with one ``device-attest-01``
challenge; a server order one authorization per identifier, each with its standard challenges
(see ``identifiers.py``). An order is created with all of them in one statement.

Rows come back typed: statuses as the enums of ``status.py``, a stored error as the
:class:`Problem` it was written from (decoded once, here, straight from its JSON).
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from acmegate.common.messages import Identifier, Problem
from acmegate.common.vocabulary import ChallengeType
from acmegate.frontend.db import rate_limits as limit_sql
from acmegate.frontend.db.gate import Checked, Gate, StaleAccount, check, gated
from acmegate.frontend.rate_limits import Limit
from acmegate.frontend.status import AuthzStatus, ChallengeStatus, OrderStatus

_problem = msgspec.json.Decoder(Problem).decode


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    account_id: str
    status: OrderStatus  # as stored; status.presented_order_status says what a client sees
    expires: datetime
    identifiers: list[Identifier]
    platform: str | None
    error: Problem | None
    certificate_id: str | None
    authz_ids: list[str]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Challenge:
    id: str
    authz_id: str
    account_id: str
    type: ChallengeType
    token: str
    status: ChallengeStatus
    validated: datetime | None
    error: Problem | None


@dataclass(frozen=True, slots=True)
class Authorization:
    id: str
    order_id: str
    account_id: str
    identifier: Identifier
    status: AuthzStatus  # as stored; status.presented_authz_status says what a client sees
    expires: datetime
    challenges: list[Challenge]
    platform: str | None  # of its order: the enrollment token's platform, if any
    wildcard: bool = False  # RFC 8555 §7.1.4: the order asked for *.<identifier>


@dataclass(frozen=True, slots=True)
class Certificate:
    id: str
    order_id: str
    account_id: str
    serial: str
    chain_pem: str


def _identifier(raw: dict[str, Any]) -> Identifier:
    return Identifier(raw["type"], raw["value"])


def _error(text: str | None) -> Problem | None:
    return _problem(text) if text is not None else None


def order_of(row: asyncpg.Record) -> Order:
    return Order(
        id=row["id"],
        account_id=row["account_id"],
        status=OrderStatus(row["status"]),
        expires=row["expires"],
        identifiers=[_identifier(item) for item in row["identifiers"]],
        platform=row["platform"],
        error=_error(row["error"]),
        certificate_id=row["certificate_id"],
        authz_ids=list(row["authz_ids"]),
        created_at=row["created_at"],
    )


def _challenge(row: asyncpg.Record) -> Challenge:
    return Challenge(
        id=row["c_id"],
        authz_id=row["id"],
        account_id=row["account_id"],
        type=ChallengeType(row["c_type"]),
        token=row["c_token"],
        status=ChallengeStatus(row["c_status"]),
        validated=row["c_validated"],
        error=_error(row["c_error"]),
    )


# `error` is read as text: it decodes straight into a Problem (not through a dict first).
_ORDER_SELECT = """
    SELECT o.id, o.account_id, o.status, o.expires, o.identifiers, o.platform,
           o.error::text AS error, o.certificate_id, o.created_at,
           ARRAY(SELECT a.id FROM acme.authorizations a WHERE a.order_id = o.id
                 ORDER BY a.created_at, a.id) AS authz_ids
    FROM acme.orders o
"""


@dataclass(frozen=True, slots=True)
class NewChallenge:
    id: str
    type: ChallengeType
    token: str


@dataclass(frozen=True, slots=True)
class NewAuthorization:
    """One authorization of a new order and its challenges."""

    id: str
    identifier: Identifier
    challenges: list[NewChallenge]
    wildcard: bool = False


@dataclass(frozen=True, slots=True)
class OrderLimits:
    """The rate limits a new order is checked against (None: off; rate_limits.py)."""

    per_account: Limit | None
    per_device: Limit | None
    now: datetime


@dataclass(frozen=True, slots=True)
class CreatedOrder:
    """What :func:`create_order` did: ``created``, or why not (a limit, or a dead token)."""

    created: bool
    platform: str | None
    # The limit that refused the order and its subject's tat (rate_limits.py).
    refused_by: Limit | None = None
    limit_tat: datetime | None = None


# The order, its authorization and its challenge in one statement. `passed` is the gate
# (db/gate.py), `allowed` adds the rate limits: nothing is written unless both let one row
# through. The limits: the device named by the identifier must not be over its failed
# validations (checked only), and the account must have an order left (taken).
#
# Parameters: $1..$13 the order (see create_order), then per part present, in this order:
# the gate (nonce id, nonce expiry, thumbprint), now (with any limit), the account limit
# (name, emission, tolerance), the device limit (name, tolerance).
_GATE = """gate_used AS (
        INSERT INTO acme.used_nonces (id, expires) VALUES ({nonce}, {expires})
        ON CONFLICT DO NOTHING RETURNING 1
    ), gate_account AS (
        SELECT 1 FROM acme.accounts WHERE id = $2 AND thumbprint = {thumbprint} AND status = 'valid'
    ), passed AS (
        SELECT 1 WHERE EXISTS (SELECT 1 FROM gate_used) AND EXISTS (SELECT 1 FROM gate_account)
    )"""
_GATE_FLAGS = """,
        EXISTS (SELECT 1 FROM gate_used) AS gate_fresh,
        EXISTS (SELECT 1 FROM gate_account) AS gate_account"""
_INSERTS = """t AS (
        SELECT NULL::text AS platform FROM allowed WHERE $11::text IS NULL
        UNION ALL
        SELECT platform FROM acme.platform_tokens, allowed
        WHERE $11::text IS NOT NULL AND token = $11 AND revoked_at IS NULL
    ), o AS (
        INSERT INTO acme.orders (
            id, account_id, status, expires, identifiers, platform, pending_authzs
        )
        SELECT $1, $2, 'pending', $3, $4, t.platform, cardinality($5::text[]) FROM t
        RETURNING id, platform
    ), a AS (
        INSERT INTO acme.authorizations (
            id, order_id, account_id, identifier, status, expires, wildcard
        )
        SELECT x.id, o.id, $2, x.identifier, 'pending', $7, x.wildcard
        FROM o, unnest($5::text[], $6::jsonb[], $12::bool[]) AS x(id, identifier, wildcard)
        RETURNING id
    ), c AS (
        INSERT INTO acme.challenges (id, authz_id, account_id, type, token, status)
        SELECT y.id, y.authz_id, $2, y.type, y.token, 'pending'
        FROM unnest($8::text[], $13::text[], $9::text[], $10::text[])
             AS y(id, authz_id, type, token)
        WHERE EXISTS (SELECT 1 FROM a)
    )"""


@functools.cache
def _create_order_sql(gated: bool, per_account: bool, per_device: bool) -> str:
    """The statement of one combination of gate and limits (built once each). Placeholders
    are numbered in the order create_order appends the parameters."""
    slot = itertools.count(14)

    def next_slot() -> str:
        return f"${next(slot)}"

    ctes: list[str] = []
    flags = ""
    if gated:
        nonce, expires, thumbprint = next_slot(), next_slot(), next_slot()
        ctes.append(_GATE.format(nonce=nonce, expires=expires, thumbprint=thumbprint))
        flags += _GATE_FLAGS
    else:
        ctes.append("passed AS (SELECT 1)")
    source = "passed"
    now = next_slot() if per_account or per_device else ""
    if per_account:
        account = limit_sql.Slots(next_slot(), next_slot(), next_slot())
    if per_device:
        device = limit_sql.Slots(next_slot(), "", next_slot())
        # An enrollment token names no device: only an identifier that is one is checked.
        # Over if the device is (proven failures) or this account is for it (unproven ones).
        subjects = limit_sql.device_subjects(
            account="$2", identifier="($4::jsonb -> 0 ->> 'value')"
        )
        over = limit_sql.over_select(device, subject=subjects, now=now)
        ctes.append(f"device_over AS ({over} AND $11::text IS NULL)")
        ctes.append(
            "device_ok AS (SELECT 1 FROM passed WHERE NOT EXISTS (SELECT 1 FROM device_over))"
        )
        source = "device_ok"
        flags += ",\n        (SELECT max(tat) FROM device_over) AS device_tat"
    if per_account:
        ctes.append(limit_sql.take_cte("taken", account, subject="$2", now=now, source=source))
        source = "taken"
        flags += f""",
        CASE WHEN EXISTS (SELECT 1 FROM {"device_ok" if per_device else "passed"})
                  AND NOT EXISTS (SELECT 1 FROM taken)
             THEN {limit_sql.tat_select(account, subject="$2")} END AS account_tat"""  # noqa: S608
    ctes.append(f"allowed AS (SELECT 1 FROM {source})")  # noqa: S608 (a CTE name)
    ctes.append(_INSERTS)
    # Only fixed fragments and placeholders are joined (no value is ever formatted in).
    return (
        "WITH "  # noqa: S608
        + ", ".join(ctes)
        + "\n    SELECT EXISTS (SELECT 1 FROM o) AS created, (SELECT platform FROM o) AS platform"
        + flags
    )


async def create_order(
    pool: asyncpg.Pool,
    *,
    order_id: str,
    account_id: str,
    identifiers: list[Identifier],
    enrollment_token: str | None,
    order_expires: datetime,
    authorizations: list[NewAuthorization],
    authz_expires: datetime,
    limits: OrderLimits,
    gate: Gate | Checked,
) -> CreatedOrder:
    """Insert an order with its authorizations and challenges in one statement.

    With an ``enrollment_token`` the order is created only if the token is live, and records
    its platform. Nothing is created when a rate limit refuses it (``refused_by``).
    """
    challenges = [(authz, c) for authz in authorizations for c in authz.challenges]
    params: list[object] = [
        order_id,
        account_id,
        order_expires,
        [{"type": i.type, "value": i.value} for i in identifiers],
        [authz.id for authz in authorizations],
        [{"type": a.identifier.type, "value": a.identifier.value} for a in authorizations],
        authz_expires,
        [c.id for _, c in challenges],
        [str(c.type) for _, c in challenges],
        [c.token for _, c in challenges],
        enrollment_token,
        [authz.wildcard for authz in authorizations],
        [authz.id for authz, _ in challenges],
    ]
    if isinstance(gate, Gate):
        params += [gate.nonce.id, gate.nonce.expires, gate.thumbprint]
    per_account, per_device = limits.per_account, limits.per_device
    if per_account is not None or per_device is not None:
        params.append(limits.now)
    if per_account is not None:
        params += limit_sql.slot_values(per_account)
    if per_device is not None:
        params += [per_device.name, per_device.tolerance]
    sql = _create_order_sql(isinstance(gate, Gate), per_account is not None, per_device is not None)
    try:
        row = await pool.fetchrow(sql, *params)
    except asyncpg.ForeignKeyViolationError as exc:
        # The account was purged (retention) while this request ran: it no longer exists.
        raise StaleAccount(account_id) from exc
    assert row is not None
    check(row, gate)
    if per_device is not None and row["device_tat"] is not None:
        return CreatedOrder(False, None, per_device, row["device_tat"])
    if per_account is not None and row["account_tat"] is not None:
        return CreatedOrder(False, None, per_account, row["account_tat"])
    return CreatedOrder(row["created"], row["platform"])


ORDER_BY_ID = _ORDER_SELECT + " WHERE o.id = $1"


async def get_order(pool: asyncpg.Pool, order_id: str, gate: Gate | Checked) -> Order | None:
    sql, params = gated(ORDER_BY_ID, [order_id], gate)
    row = await pool.fetchrow(sql, *params)
    check(row, gate)
    return order_of(row) if row is not None and row["id"] is not None else None


async def list_order_ids(
    pool: asyncpg.Pool, account_id: str, *, before: datetime | None, limit: int
) -> list[tuple[str, datetime]]:
    """Ids of an account's pending/ready/processing/valid orders, newest first (§7.1.2.1)."""
    rows = await pool.fetch(
        """
        SELECT id, created_at FROM acme.orders
        WHERE account_id = $1 AND ($2::timestamptz IS NULL OR created_at < $2)
          AND status <> 'invalid'
        ORDER BY created_at DESC LIMIT $3
        """,
        account_id,
        before,
        limit,
    )
    return [(row["id"], row["created_at"]) for row in rows]


_AUTHZ_SELECT = """
    SELECT a.id, a.order_id, a.account_id, a.identifier, a.status, a.expires, o.platform,
           a.wildcard,
           c.id AS c_id, c.type AS c_type, c.token AS c_token, c.status AS c_status,
           c.validated AS c_validated, c.error::text AS c_error
    FROM acme.authorizations a
    JOIN acme.challenges c ON c.authz_id = a.id
    JOIN acme.orders o ON o.id = a.order_id
"""


# The authorization holding the challenge $1 (with all its challenges).
AUTHZ_OF_CHALLENGE = (
    _AUTHZ_SELECT  # noqa: S608 (a constant query prefix)
    + " WHERE a.id = (SELECT authz_id FROM acme.challenges WHERE id = $1)"
)


def authorization_of(rows: list[asyncpg.Record]) -> Authorization | None:
    """The authorization in the rows of an ``_AUTHZ_SELECT`` (None: no such one)."""
    rows = [row for row in rows if row["id"] is not None]
    if not rows:
        return None
    first = rows[0]
    return Authorization(
        id=first["id"],
        order_id=first["order_id"],
        account_id=first["account_id"],
        identifier=_identifier(first["identifier"]),
        status=AuthzStatus(first["status"]),
        expires=first["expires"],
        # A stable order for clients that take the first challenge they support.
        challenges=sorted((_challenge(row) for row in rows), key=lambda c: (c.type, c.id)),
        platform=first["platform"],
        wildcard=first["wildcard"],
    )


async def _gated_rows(
    pool: asyncpg.Pool, query: str, params: list[object], gate: Gate | Checked
) -> list[asyncpg.Record]:
    sql, values = gated(query, params, gate)
    rows: list[asyncpg.Record] = await pool.fetch(sql, *values)
    check(rows[0] if rows else None, gate)
    return rows


async def get_authorization(
    pool: asyncpg.Pool, authz_id: str, gate: Gate | Checked
) -> Authorization | None:
    return authorization_of(
        await _gated_rows(pool, _AUTHZ_SELECT + " WHERE a.id = $1", [authz_id], gate)
    )


async def get_authorization_of_challenge(
    pool: asyncpg.Pool, challenge_id: str, gate: Gate | Checked
) -> Authorization | None:
    """The authorization holding ``challenge_id`` (with all its challenges)."""
    return authorization_of(await _gated_rows(pool, AUTHZ_OF_CHALLENGE, [challenge_id], gate))


async def deactivate_authorization(pool: asyncpg.Pool, authz_id: str) -> bool:
    """RFC 8555 §7.5.2: a pending or valid authorization may be deactivated by its owner."""
    changed = await pool.fetchval(
        """
        WITH a AS (
            UPDATE acme.authorizations SET status = 'deactivated'
            WHERE id = $1 AND status IN ('pending', 'valid') RETURNING order_id
        ), o AS (
            UPDATE acme.orders o SET status = 'invalid'
            FROM a WHERE o.id = a.order_id AND o.status IN ('pending', 'ready')
        )
        SELECT count(*) FROM a
        """,
        authz_id,
    )
    return bool(changed)


async def get_certificate(
    pool: asyncpg.Pool, certificate_id: str, gate: Gate | Checked
) -> Certificate | None:
    sql, params = gated(
        "SELECT id, order_id, account_id, serial, chain_pem FROM acme.certificates WHERE id = $1",
        [certificate_id],
        gate,
    )
    row = await pool.fetchrow(sql, *params)
    check(row, gate)
    if row is None or row["id"] is None:
        return None
    return Certificate(
        id=row["id"],
        order_id=row["order_id"],
        account_id=row["account_id"],
        serial=row["serial"],
        chain_pem=row["chain_pem"],
    )
