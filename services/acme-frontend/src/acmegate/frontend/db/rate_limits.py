"""The SQL of the rate limits (``acme.rate_limits``; the algorithm: ``rate_limits.py``).

Where a request already runs a statement, the limit rides in it as a CTE built here, so a
limit costs no round trip of its own:

- :func:`take_cte`: take one event if the budget allows (newAccount, newOrder); no row
  returned means refused;
- :func:`count_cte`: count an event that already happened (a failed validation), whatever
  the budget; ``tat`` is capped at ``now + period`` so a flood cannot lock a subject out for
  longer than one period;
- :data:`OVER`: the ``tat`` of a subject that is over its limit (checked, nothing taken).

Placeholders are passed in by the caller (``"$12"``…): the statements around these CTEs number
their parameters, these fragments only name them. Only fixed text is formatted in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from acmegate.frontend.rate_limits import Limit


@dataclass(frozen=True, slots=True)
class Slots:
    """The placeholders of one limit in a statement: its name, emission interval, tolerance."""

    name: str
    emission: str
    tolerance: str


def slot_values(limit: Limit) -> tuple[str, timedelta, timedelta]:
    """The values for a limit's :class:`Slots`, in that order."""
    return limit.name, limit.emission, limit.tolerance


def take_cte(cte: str, slots: Slots, *, subject: str, now: str, source: str) -> str:
    """``cte AS (…)``: one event taken for ``subject`` per row of ``source`` if allowed;
    returns the new ``tat`` (no row: refused, or ``source`` was empty)."""
    return f"""{cte} AS (
        INSERT INTO acme.rate_limits AS r (name, subject, tat)
        SELECT {slots.name}, {subject}, {now}::timestamptz + {slots.emission}::interval
        FROM {source}
        ON CONFLICT (name, subject) DO UPDATE
        SET tat = greatest(r.tat, {now}::timestamptz) + {slots.emission}::interval
        WHERE r.tat - {now}::timestamptz <= {slots.tolerance}::interval
        RETURNING r.tat
    )"""  # noqa: S608 (placeholders and fixed fragments only)


def count_cte(cte: str, slots: Slots, *, subject: str, now: str, source: str) -> str:
    """``cte AS (…)``: one event counted for ``subject`` per row of ``source``, allowed or
    not, ``tat`` capped at ``now + period`` (emission + tolerance)."""
    return f"""{cte} AS (
        INSERT INTO acme.rate_limits AS r (name, subject, tat)
        SELECT {slots.name}, {subject}, {now}::timestamptz + {slots.emission}::interval
        FROM {source}
        ON CONFLICT (name, subject) DO UPDATE
        SET tat = least(
            greatest(r.tat, {now}::timestamptz) + {slots.emission}::interval,
            {now}::timestamptz + {slots.emission}::interval + {slots.tolerance}::interval
        )
        RETURNING r.tat
    )"""  # noqa: S608 (placeholders and fixed fragments only)


def device_subject(*, account: str, identifier: str, device: str) -> str:
    """The subject a failed validation is charged to: the device (``identifier``) when
    ``device`` is true, else the pair of ``account`` and ``identifier``."""
    return f"CASE WHEN {device} THEN ({identifier}) ELSE {account} || ' ' || ({identifier}) END"


def device_subjects(*, account: str, identifier: str) -> str:
    """Both subjects :func:`device_subject` may charge, for an ``= ANY(…)`` check."""
    return f"ANY(ARRAY[({identifier}), {account} || ' ' || ({identifier})])"


def over_select(slots: Slots, *, subject: str, now: str) -> str:
    """A SELECT of the ``tat`` of ``subject`` when it is over its limit (else no row)."""
    return f"""SELECT r.tat FROM acme.rate_limits r
        WHERE r.name = {slots.name} AND r.subject = {subject}
          AND r.tat - {now}::timestamptz > {slots.tolerance}::interval"""  # noqa: S608


def tat_select(slots: Slots, *, subject: str) -> str:
    """A scalar subquery: the current ``tat`` of ``subject`` (for ``Retry-After``)."""
    return (
        "(SELECT r.tat FROM acme.rate_limits r "  # noqa: S608 (placeholders only)
        f"WHERE r.name = {slots.name} AND r.subject = {subject})"
    )


# The admin listener's statements (no request statement to ride in). Counting: $1 name,
# $2 subject, $3 emission, $4 tolerance, $5 now; checking: the same without the emission.
_SLOTS = Slots("$1", "$3", "$4")
_OVER = over_select(Slots("$1", "", "$3"), subject="$2", now="$4")
_COUNT = f"""
    WITH {count_cte("counted", _SLOTS, subject="$2", now="$5", source="(SELECT 1) AS one")}
    SELECT tat FROM counted
"""  # noqa: S608 (a fixed fragment)


async def over_limit(
    pool: asyncpg.Pool, limit: Limit, subject: str, now: datetime
) -> datetime | None:
    """The ``tat`` of ``subject`` if it is over ``limit`` at ``now``, else None."""
    tat: datetime | None = await pool.fetchval(_OVER, limit.name, subject, limit.tolerance, now)
    return tat


async def count_event(pool: asyncpg.Pool, limit: Limit, subject: str, now: datetime) -> datetime:
    """Count one event of ``subject`` (allowed or not); returns its ``tat`` afterwards."""
    name, emission, tolerance = slot_values(limit)
    tat: datetime = await pool.fetchval(_COUNT, name, subject, emission, tolerance, now)
    return tat
