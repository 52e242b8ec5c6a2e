"""Enrollment events (``acme.enrollment_events``): written by ``db/work.py`` in the statement
that applies a result, read here by the admin API, the dashboard and ``acmegate enrollments``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

import asyncpg
import msgspec

from acmegate.common.messages import Problem

EnrollmentOutcome = Literal["completed", "failed"]
EnrollmentStage = Literal["challenge", "order"]  # where a failed enrollment ended
OUTCOMES: tuple[EnrollmentOutcome, ...] = get_args(EnrollmentOutcome)

_problem = msgspec.json.Decoder(Problem).decode

_COLUMNS = """
    id, at, outcome, stage, order_id, account_id, identifier, platform, device_serial,
    problem::text AS problem_json, certificate_serial, enrollment_policy,
    certificate_template, signal_source
"""


@dataclass(frozen=True, slots=True)
class EnrollmentEvent:
    """One finished enrollment: completed (a certificate) or failed (and why)."""

    id: int
    at: datetime
    outcome: EnrollmentOutcome
    stage: EnrollmentStage
    order_id: str
    account_id: str
    identifier: str | None
    platform: str | None
    device_serial: str | None
    certificate_serial: str | None
    enrollment_policy: str | None
    certificate_template: str | None
    signal_source: str | None
    # The stored problem of a failure (written by db/work.py from the Problem it applied).
    problem: Problem | None

    @property
    def reason(self) -> str | None:
        """What a person reads: the problem's detail."""
        if self.problem is None:
            return None
        return self.problem.detail or self.problem.kind


def _event(row: asyncpg.Record) -> EnrollmentEvent:
    values = dict(row)
    problem_json = values.pop("problem_json")
    values["problem"] = _problem(problem_json) if problem_json else None
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
