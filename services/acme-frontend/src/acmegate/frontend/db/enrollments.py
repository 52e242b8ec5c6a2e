"""Enrollment events (``acme.enrollment_events``): written by ``db/work.py`` in the statement
that applies a result, read here by the admin API, the dashboard and ``acmegate enrollments``."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

import asyncpg
import msgspec

from acmegate.common.messages import UtcTime
from acmegate.common.vocabulary import ErrorKind

EnrollmentOutcome = Literal["completed", "failed"]
EnrollmentStage = Literal["challenge", "order"]  # where a failed enrollment ended
OUTCOMES: tuple[EnrollmentOutcome, ...] = get_args(EnrollmentOutcome)

_COLUMNS = """
    id, at, outcome, stage, order_id, account_id, identifier, platform, device_serial,
    problem::text AS problem_json, certificate_serial, enrollment_policy,
    certificate_template, signal_source
"""


class ProblemSummary(msgspec.Struct, frozen=True):
    """Why an enrollment failed: the problem's kind and detail."""

    kind: ErrorKind
    detail: str


_summary = msgspec.json.Decoder(ProblemSummary).decode


class EnrollmentEvent(msgspec.Struct, frozen=True):
    """One finished enrollment: completed (a certificate) or failed (and why). The admin API,
    ``acmegate enrollments`` and the dashboard show it as it is."""

    id: int
    at: UtcTime
    outcome: EnrollmentOutcome
    stage: EnrollmentStage
    order_id: str
    account_id: str
    identifier: Annotated[
        str | None,
        msgspec.Meta(
            description="The order's identifier when it named the device (never a token)."
        ),
    ]
    platform: str | None
    device_serial: str | None
    certificate_serial: str | None
    enrollment_policy: str | None
    certificate_template: str | None
    signal_source: str | None
    # What a person reads: the problem's detail.
    reason: str | None
    # The stored problem of a failure (written by db/work.py from the Problem it applied).
    problem: ProblemSummary | None


def _event(row: asyncpg.Record) -> EnrollmentEvent:
    values = dict(row)
    problem_json = values.pop("problem_json")
    problem = _summary(problem_json) if problem_json else None
    values["problem"] = problem
    values["reason"] = (problem.detail or problem.kind) if problem is not None else None
    return EnrollmentEvent(**values)


async def recent_events(
    pool: asyncpg.Pool, *, outcome: EnrollmentOutcome | None = None, limit: int = 50
) -> list[EnrollmentEvent]:
    """The newest events, all or of one outcome (``completed``/``failed``), at most ``limit``
    (1..1000)."""
    limit = max(1, min(limit, 1000))
    if outcome is None:
        rows = await pool.fetch(
            f"SELECT {_COLUMNS} FROM acme.enrollment_events "  # noqa: S608
            "ORDER BY at DESC, id DESC LIMIT $1",
            limit,
        )
    else:
        rows = await pool.fetch(
            f"SELECT {_COLUMNS} FROM acme.enrollment_events WHERE outcome = $1 "  # noqa: S608
            "ORDER BY at DESC, id DESC LIMIT $2",
            outcome,
            limit,
        )
    return [_event(row) for row in rows]
