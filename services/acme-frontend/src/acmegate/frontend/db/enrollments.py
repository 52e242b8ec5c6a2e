"""Enrollment events (``acme.enrollment_events``): written by ``db/work.py`` in the statement
that applies a result, read here by the admin API, the dashboard and ``acmegate enrollments``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

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
    outcome: str
    stage: str  # challenge | order
    order_id: str
    account_id: str
    identifier: str | None
    platform: str | None
    device_serial: str | None
    certificate_serial: str | None
    enrollment_policy: str | None
    certificate_template: str | None
    signal_source: str | None
    # The stored problem (kind, detail, ...) of a failure.
    problem: dict[str, Any] | None

    @property
    def reason(self) -> str | None:
        """What a person reads: the problem's detail."""
        if self.problem is None:
            return None
        return str(self.problem.get("detail") or self.problem.get("kind") or "")


def _event(row: asyncpg.Record) -> EnrollmentEvent:
    values = dict(row)
    problem_json = values.pop("problem_json")
    problem = msgspec.json.decode(problem_json) if problem_json else None
    # Always an object (kind, detail) when written by db/work.py; anything else is its detail.
    values["problem"] = (
        problem if isinstance(problem, dict) or problem is None else {"detail": str(problem)}
    )
    return EnrollmentEvent(**values)


async def recent_events(
    pool: asyncpg.Pool, *, outcome: str | None = None, limit: int = 50
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
