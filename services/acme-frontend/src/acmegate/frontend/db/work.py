"""Work handed to the pipeline: fencing into ``processing``, the outbox, applying results.

Each function is one statement, so a status change and its outbox row are atomic:

- :func:`begin_challenge` / :func:`begin_finalize`: compare-and-set ``pending → processing``
  (challenge) or ``ready → processing`` (order, Boulder's ``SetOrderProcessing``) and insert
  the outbox row holding the exact message to publish. Zero rows: someone else got there first.
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
from typing import Literal

import asyncpg
import msgspec

from acmegate.common.messages import DeviceClaims, EnrollmentRecord, Problem
from acmegate.frontend.db import rate_limits as limit_sql
from acmegate.frontend.rate_limits import Limit

_encode = msgspec.json.Encoder().encode

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


async def begin_challenge(
    pool: asyncpg.Pool,
    challenge_id: str,
    *,
    queue: str,
    body: bytes,
    now: datetime,
    deadline: datetime,
    retry_at: datetime,
) -> bool:
    """``pending → processing`` for a challenge whose authorization is still pending."""
    started = await pool.fetchval(
        """
        WITH ch AS (
            UPDATE acme.challenges c SET status = 'processing'
            FROM acme.authorizations a
            WHERE c.id = $1 AND c.status = 'pending'
              AND a.id = c.authz_id AND a.status = 'pending' AND a.expires > $2
            RETURNING c.id
        )
        INSERT INTO acme.outbox (id, kind, subject_id, queue, body, deadline, next_attempt_at)
        SELECT $7, 'challenge', ch.id, $3, $4, $5, $6 FROM ch
        RETURNING true
        """,
        challenge_id,
        now,
        queue,
        body,
        deadline,
        retry_at,
        work_key("challenge", challenge_id),
    )
    return bool(started)


async def begin_finalize(
    pool: asyncpg.Pool,
    order_id: str,
    *,
    queue: str,
    body: bytes,
    now: datetime,
    deadline: datetime,
    retry_at: datetime,
) -> bool:
    """``ready → processing`` for an unexpired order (RFC 8555 §7.4)."""
    started = await pool.fetchval(
        """
        WITH o AS (
            UPDATE acme.orders SET status = 'processing', processing_at = $2
            WHERE id = $1 AND status = 'ready' AND expires > $2
            RETURNING id
        )
        INSERT INTO acme.outbox (id, kind, subject_id, queue, body, deadline, next_attempt_at)
        SELECT $7, 'order', o.id, $3, $4, $5, $6 FROM o
        RETURNING true
        """,
        order_id,
        now,
        queue,
        body,
        deadline,
        retry_at,
        work_key("order", order_id),
    )
    return bool(started)


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
