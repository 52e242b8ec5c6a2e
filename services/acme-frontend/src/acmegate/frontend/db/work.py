"""Work handed to the pipeline: fencing into ``processing``, the outbox, applying results.

Each function is one statement, so a status change and its outbox row are atomic:

- :func:`answer_challenge` / :func:`start_finalize`: the request's first (and only) statement
  reads the authorization or order, and in the same statement compare-and-sets
  ``pending → processing`` (challenge) or ``ready → processing`` (order, Boulder's
  ``SetOrderProcessing``) and inserts the outbox row holding the exact message to publish,
  completed in SQL from the rows it fences (:func:`message_head` has the request's part).
  The fence is taken only for the requesting account's object, after the gate's nonce and
  account checks passed (db/gate.py). No body: not taken (not pending/ready, or someone else
  got there first).
- :func:`apply_challenge_result` / :func:`apply_order_result`: compare-and-set out of
  ``processing``, store the outcome, delete the outbox row and append the enrollment event
  (``acme.enrollment_events``: a failed challenge, an issued or failed order) in the same
  statement, so the event costs no round trip of its own; a failed validation is counted
  against the device's rate limit there too. A duplicate result finds nothing
  in ``processing`` and changes nothing (every result is applied at most once, and so is its
  event).
- :func:`claim_due`: the sweeper's lease on late rows (``FOR UPDATE SKIP LOCKED``, so replicas
  never double-handle a row).

A piece of work is named by :func:`work_key` (``challenge:<id>``, ``order:<id>``): it is the
outbox row's id and what the requests waiting for the result wait on (``waiters.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, Literal, TypeVar

import asyncpg
import msgspec

from acmegate.common.bus.codec import Message
from acmegate.common.messages import DeviceClaims, EnrollmentRecord, Problem
from acmegate.frontend.db import orders as order_db
from acmegate.frontend.db import rate_limits as limit_sql
from acmegate.frontend.db.gate import Checked, Gate, check, fenced
from acmegate.frontend.rate_limits import Limit

_encode = msgspec.json.Encoder().encode
T = TypeVar("T")

# What the pipeline works on for the frontend (also WorkDone.kind on the bus).
WorkKind = Literal["challenge", "order"]


def work_key(kind: WorkKind, subject_id: str) -> str:
    """The name of a piece of work: its outbox row's id, and what its waiters wait on."""
    return f"{kind}:{subject_id}"


def _json(value: DeviceClaims | Problem | None) -> str | None:
    return None if value is None else _encode(value).decode("utf-8")


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A late piece of work, leased by the sweeper."""

    id: str  # work_key(kind, subject_id)
    kind: WorkKind
    subject_id: str
    queue: str
    body: bytes
    attempts: int
    deadline: datetime


@dataclass(frozen=True, slots=True)
class OutboxTimes:
    """When a fence is taken, and its outbox row's deadline and first republish."""

    now: datetime
    deadline: datetime
    retry_at: datetime


@dataclass(frozen=True, slots=True)
class Fenced(Generic[T]):
    """What a fencing statement read (before its writes), and the message body its outbox
    row holds when it took the fence (None: not taken)."""

    read: T
    body: bytes | None


def message_head(message_type: type[Message], **fields: object) -> str:
    """The part of a pipeline message the request supplies, as a JSON object: its ``type``
    tag and ``fields``; the fencing statement adds the stored part (its ``jsonb_build_object``
    names the remaining fields of ``message_type``). Encoded by the bus codec's rules
    (bytes as base64), so the finished body decodes as ``message_type``."""
    tag = message_type.__struct_config__.tag
    return _encode({"type": tag, **fields}).decode("utf-8")


# The outbox row of a fence taken by the CTE `fence` (its `body`): $4 queue, $6 deadline,
# $7 first republish, $8 work key.
_OUTBOX = """, outbox AS (
            INSERT INTO acme.outbox (id, kind, subject_id, queue, body, deadline, next_attempt_at)
            SELECT $8, '{kind}', $1, $4, fence.body, $6, $7 FROM fence
        )"""

# ``pending → processing`` for a pending challenge of the account ($2) whose authorization is
# still pending ($5: now), with its VerifyChallenge completed from the rows ($3: the head).
_CHALLENGE_FENCE = """fence AS (
            UPDATE acme.challenges c SET status = 'processing'
            FROM acme.authorizations a, acme.orders o, gate_passed
            WHERE c.id = $1 AND c.account_id = $2 AND c.status = 'pending'
              AND a.id = c.authz_id AND a.status = 'pending' AND a.expires > $5
              AND o.id = a.order_id
            RETURNING convert_to(($3::text::jsonb || jsonb_build_object(
                'challenge_id', c.id, 'authz_id', a.id, 'order_id', a.order_id,
                'account_id', a.account_id, 'challenge_type', c.type,
                'identifier', a.identifier, 'token', c.token, 'platform', o.platform
            ))::text, 'UTF8') AS body
        )""" + _OUTBOX.format(kind="challenge")  # noqa: S608 (constant fragments)

# ``ready → processing`` for an unexpired order of the account (RFC 8555 §7.4), with its
# FinalizeOrder completed from the order and the device claims its authorizations recorded.
_FINALIZE_FENCE = """fence AS (
            UPDATE acme.orders o SET status = 'processing', processing_at = $5
            FROM gate_passed
            WHERE o.id = $1 AND o.account_id = $2 AND o.status = 'ready' AND o.expires > $5
            RETURNING convert_to(($3::text::jsonb || jsonb_build_object(
                'order_id', o.id, 'account_id', o.account_id, 'identifiers', o.identifiers,
                'claims', coalesce((
                    SELECT jsonb_agg(a.claims ORDER BY a.created_at, a.id)
                    FROM acme.authorizations a
                    WHERE a.order_id = o.id AND a.claims IS NOT NULL
                ), '[]'::jsonb),
                'platform', o.platform
            ))::text, 'UTF8') AS body
        )""" + _OUTBOX.format(kind="order")  # noqa: S608 (constant fragments)


async def _fence_rows(
    pool: asyncpg.Pool,
    writes: str,
    query: str,
    *,
    kind: WorkKind,
    subject_id: str,
    account_id: str,
    head: str,
    queue: str,
    times: OutboxTimes,
    gate: Gate | Checked,
) -> tuple[list[asyncpg.Record], bytes | None]:
    params = [
        subject_id,
        account_id,
        head,
        queue,
        times.now,
        times.deadline,
        times.retry_at,
        work_key(kind, subject_id),
    ]
    sql, values = fenced(writes, "(SELECT body FROM fence) AS fence_body,", query, params, gate)
    rows: list[asyncpg.Record] = await pool.fetch(sql, *values)
    check(rows[0] if rows else None, gate)
    return rows, rows[0]["fence_body"] if rows else None


async def answer_challenge(
    pool: asyncpg.Pool,
    challenge_id: str,
    *,
    account_id: str,
    head: str,
    queue: str,
    times: OutboxTimes,
    gate: Gate | Checked,
) -> Fenced[order_db.Authorization | None]:
    """Read the challenge's authorization and, in the same statement, fence the challenge
    ``pending → processing`` with its outbox row if it is the account's and still pending
    (the request's first statement: it also redeems the gate)."""
    rows, body = await _fence_rows(
        pool,
        _CHALLENGE_FENCE,
        order_db.AUTHZ_OF_CHALLENGE,
        kind="challenge",
        subject_id=challenge_id,
        account_id=account_id,
        head=head,
        queue=queue,
        times=times,
        gate=gate,
    )
    return Fenced(order_db.authorization_of(rows), body)


async def start_finalize(
    pool: asyncpg.Pool,
    order_id: str,
    *,
    account_id: str,
    head: str,
    queue: str,
    times: OutboxTimes,
    gate: Gate | Checked,
) -> Fenced[order_db.Order | None]:
    """Read the order and, in the same statement, fence it ``ready → processing`` with its
    outbox row if it is the account's, ready and unexpired (Boulder's ``SetOrderProcessing``)."""
    rows, body = await _fence_rows(
        pool,
        _FINALIZE_FENCE,
        order_db.ORDER_BY_ID,
        kind="order",
        subject_id=order_id,
        account_id=account_id,
        head=head,
        queue=queue,
        times=times,
        gate=gate,
    )
    row = rows[0] if rows else None
    return Fenced(
        order_db.order_of(row) if row is not None and row["id"] is not None else None, body
    )


# A failed validation the client caused (not the server's own serverInternal/unavailable) is
# counted against the failed-validations limit (rate_limits.py) when the order named a
# device: against the device itself only when Apple's chain proved the failure was that
# device's ($10, charged_to_device); otherwise against this account and that identifier, so
# that forged statements naming a serial cannot lock the real device out (Boulder keys its
# failed-validations limit by account and identifier for the same reason).
# $7 limit name, $8 emission, $9 tolerance, $10 charged to the device.
_FAILURE_COUNT = limit_sql.count_cte(
    "fv",
    limit_sql.Slots("$7", "$8", "$9"),
    subject=limit_sql.device_subject(
        account="od.account_id", identifier="od.identifiers -> 0 ->> 'value'", device="$10::bool"
    ),
    now="$5",
    source="""od WHERE $2 = 'invalid' AND od.platform IS NULL
          AND $4::text::jsonb ->> 'kind' NOT IN ('serverInternal', 'unavailable')""",
)
_CHALLENGE_RESULT = """
        WITH ch AS (
            UPDATE acme.challenges
            SET status = $2, error = $4::text::jsonb,
                validated = CASE WHEN $2 = 'valid' THEN $5::timestamptz END
            WHERE id = $1 AND status = 'processing'
            RETURNING authz_id
        ), az AS (
            UPDATE acme.authorizations a SET status = $2, claims = $3::text::jsonb
            FROM ch WHERE a.id = ch.authz_id AND a.status = 'pending'
            RETURNING a.order_id
        ), od AS (
            -- RFC 8555 §7.1.6: the order is ready once every authorization is valid, invalid
            -- as soon as one is invalid. The count lives on the order row, which this UPDATE
            -- locks: concurrent results of one order are counted one after the other.
            UPDATE acme.orders o
            SET status = CASE WHEN $2 <> 'valid' THEN 'invalid'
                              WHEN o.pending_authzs <= 1 THEN 'ready' ELSE 'pending' END,
                pending_authzs = CASE WHEN $2 = 'valid' THEN o.pending_authzs - 1
                                      ELSE o.pending_authzs END,
                error = CASE WHEN $2 = 'valid' THEN NULL ELSE $4::text::jsonb END
            FROM az WHERE o.id = az.order_id AND o.status = 'pending'
            RETURNING o.id, o.account_id, o.platform, o.identifiers
        ), ob AS (
            DELETE FROM acme.outbox WHERE id = $6
        ), ev AS (
            -- A failed challenge ends the enrollment; a valid one only readies the order.
            INSERT INTO acme.enrollment_events (
                at, outcome, stage, order_id, account_id, identifier, platform, device_serial,
                problem
            )
            SELECT $5, 'failed', 'challenge', od.id, od.account_id,
                   CASE WHEN od.platform IS NULL THEN od.identifiers -> 0 ->> 'value' END,
                   od.platform, $3::text::jsonb ->> 'serial_number', $4::text::jsonb
            FROM od WHERE $2 = 'invalid'
        ){failures}
        SELECT count(*) FROM ch
"""
_CHALLENGE_RESULT_UNLIMITED = _CHALLENGE_RESULT.format(failures="")
_CHALLENGE_RESULT_LIMITED = _CHALLENGE_RESULT.format(failures=", " + _FAILURE_COUNT)


async def apply_challenge_result(
    pool: asyncpg.Pool,
    challenge_id: str,
    *,
    claims: DeviceClaims | None,
    problem: Problem | None,
    now: datetime,
    failures: Limit | None = None,
    charged_to_device: bool = False,
) -> bool:
    """Record a validation outcome on the challenge, its authorization and its order; a
    failure the device caused counts against ``failures`` (its failed-validations limit)."""
    # A device challenge proves itself with claims; a server one (http-01, …) has none.
    status = "valid" if problem is None else "invalid"
    key = work_key("challenge", challenge_id)
    values = (challenge_id, status, _json(claims), _json(problem), now, key)
    if failures is None:
        applied = await pool.fetchval(_CHALLENGE_RESULT_UNLIMITED, *values)
    else:
        applied = await pool.fetchval(
            _CHALLENGE_RESULT_LIMITED,
            *values,
            *limit_sql.slot_values(failures),
            charged_to_device,
        )
    return bool(applied)


def _order_event(outcome: str, *, problem: str, serial: str, first: int) -> str:
    """The INSERT of a finished order's event: the last CTE of the statements below.

    Its parameters start at ``$first``: (at, device serial, platform, enrollment policy,
    template, signal source). Only fixed fragments are formatted in (once, at import);
    every value is a parameter.
    """
    at, device, platform, policy, template, source = (f"${first + i}" for i in range(6))
    return f"""
            INSERT INTO acme.enrollment_events (
                at, outcome, stage, order_id, account_id, identifier, platform,
                device_serial, problem, certificate_serial, enrollment_policy,
                certificate_template, signal_source
            )
            SELECT {at}::timestamptz, '{outcome}', 'order', o.id, o.account_id,
                   -- An enrollment token is the platform's credential: not copied.
                   CASE WHEN o.platform IS NULL THEN o.identifiers -> 0 ->> 'value' END,
                   coalesce(o.platform, {platform}::text),
                   coalesce({device}::text, (
                       SELECT a.claims ->> 'serial_number' FROM acme.authorizations a
                       WHERE a.order_id = o.id LIMIT 1
                   )),
                   {problem}, {serial}, {policy}::text, {template}::text, {source}::text
            FROM o"""  # noqa: S608


_ORDER_VALID = f"""
        WITH o AS (
            UPDATE acme.orders SET status = 'valid', certificate_id = $2
            WHERE id = $1 AND status = 'processing'
            RETURNING id, account_id, platform, identifiers, created_at
        ), c AS (
            -- not_after ($11) decides when retention may delete the chain (retention.py).
            INSERT INTO acme.certificates (id, order_id, account_id, serial, chain_pem, not_after)
            SELECT $2, $1, o.account_id, $3, $4, $11 FROM o
        ), ob AS (
            DELETE FROM acme.outbox WHERE id = $12
        ), ev AS ({_order_event("completed", problem="NULL", serial="$3", first=5)}
        )
        SELECT created_at FROM o
"""  # noqa: S608

_ORDER_INVALID = f"""
        WITH o AS (
            UPDATE acme.orders SET status = 'invalid', error = $2::text::jsonb
            WHERE id = $1 AND status = 'processing'
            RETURNING id, account_id, platform, identifiers, created_at
        ), ob AS (
            DELETE FROM acme.outbox WHERE id = $9
        ), ev AS ({_order_event("failed", problem="$2::text::jsonb", serial="NULL", first=3)}
        )
        SELECT created_at FROM o
"""  # noqa: S608


async def apply_order_result(
    pool: asyncpg.Pool,
    order_id: str,
    *,
    certificate_id: str | None,
    serial: str | None,
    chain_pem: str | None,
    problem: Problem | None,
    now: datetime,
    record: EnrollmentRecord | None = None,
    template: str | None = None,
    not_after: datetime | None = None,
) -> datetime | None:
    """``processing → valid`` with the certificate, or ``→ invalid`` with the problem; the
    order's creation time if this call applied it (None: it was no longer processing).

    ``record`` (the policy stage's, when the result carries it) and ``template`` (its
    enrollment policy's) go into the enrollment event; without a record the device serial
    comes from the attestation claims stored on the order's authorization. ``not_after`` is
    the certificate's, kept with its chain for retention.
    """
    event = (
        now,
        record.device.serial_number if record is not None and record.device else None,
        record.platform if record is not None else None,
        record.enrollment_policy if record is not None else None,
        template,
        record.signal_source if record is not None else None,
    )
    key = work_key("order", order_id)
    created: datetime | None
    if problem is None and certificate_id and chain_pem and serial:
        created = await pool.fetchval(
            _ORDER_VALID, order_id, certificate_id, serial, chain_pem, *event, not_after, key
        )
    else:
        created = await pool.fetchval(_ORDER_INVALID, order_id, _json(problem), *event, key)
    return created


async def order_certificate_serial(pool: asyncpg.Pool, order_id: str) -> tuple[str, str | None]:
    """(status, serial of its certificate) of an order, for results that came too late."""
    row = await pool.fetchrow(
        """
        SELECT o.status, c.serial FROM acme.orders o
        LEFT JOIN acme.certificates c ON c.order_id = o.id
        WHERE o.id = $1
        """,
        order_id,
    )
    if row is None:
        return "missing", None
    return row["status"], row["serial"]


async def outbox_backlog(pool: asyncpg.Pool, now: datetime) -> tuple[int, float]:
    """Unanswered outbox rows, and the age in seconds of the oldest (0 without any)."""
    row = await pool.fetchrow("SELECT count(*) AS n, min(created_at) AS oldest FROM acme.outbox")
    assert row is not None
    oldest = row["oldest"]
    return int(row["n"]), (now - oldest).total_seconds() if oldest is not None else 0.0


async def claim_due(
    pool: asyncpg.Pool, *, now: datetime, republish_after: timedelta, limit: int = 200
) -> list[OutboxRow]:
    """Lease the outbox rows whose result is late; each comes back after a growing backoff."""
    rows = await pool.fetch(
        """
        UPDATE acme.outbox o
        SET attempts = o.attempts + 1,
            next_attempt_at = $1 + $2::interval * least(power(2, o.attempts), 8)
        WHERE o.id IN (
            SELECT id FROM acme.outbox WHERE next_attempt_at <= $1
            ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED
        )
        RETURNING o.id, o.kind, o.subject_id, o.queue, o.body, o.attempts, o.deadline
        """,
        now,
        republish_after,
        limit,
    )
    return [
        OutboxRow(
            row["id"],
            row["kind"],
            row["subject_id"],
            row["queue"],
            row["body"],
            row["attempts"],
            row["deadline"],
        )
        for row in rows
    ]


async def release(pool: asyncpg.Pool, ids: list[str], *, now: datetime) -> None:
    """Give back leases of rows that could not be published because the bus is down: that is
    not an attempt (the backoff is for stages that do not answer), and the rows stay due so
    that the sweep after the broker's return publishes them at once."""
    await pool.execute(
        """
        UPDATE acme.outbox
        SET attempts = greatest(attempts - 1, 0), next_attempt_at = $2
        WHERE id = ANY($1::text[])
        """,
        ids,
        now,
    )
