"""``/api/v1/enrollments``: finished enrollments, completed and failed (with the reason)."""

from __future__ import annotations

from aiohttp import web

from acmegate.frontend.admin.context import ADMIN
from acmegate.frontend.admin.params import query_choice, query_int
from acmegate.frontend.admin.render import json_response
from acmegate.frontend.admin.views import EnrollmentEvent as EventView
from acmegate.frontend.admin.views import ProblemSummary
from acmegate.frontend.db.enrollments import OUTCOMES, EnrollmentEvent, recent_events


def event_json(event: EnrollmentEvent) -> EventView:
    """An event as the admin API (and ``acmegate enrollments``) shows it."""
    problem = event.problem
    return EventView(
        id=event.id,
        at=event.at,
        outcome=event.outcome,
        stage=event.stage,
        order_id=event.order_id,
        account_id=event.account_id,
        identifier=event.identifier,
        platform=event.platform,
        device_serial=event.device_serial,
        certificate_serial=event.certificate_serial,
        enrollment_policy=event.enrollment_policy,
        certificate_template=event.certificate_template,
        signal_source=event.signal_source,
        reason=event.reason,
        problem=ProblemSummary(problem.kind, problem.detail) if problem is not None else None,
    )


async def list_enrollments(request: web.Request) -> web.Response:
    outcome = query_choice(request, "outcome", OUTCOMES)
    limit = query_int(request, "limit", default=50, minimum=1, maximum=1000)
    events = await recent_events(
        request.app[ADMIN].frontend.pool,
        outcome=outcome,
        limit=limit,
    )
    return json_response({"enrollments": [event_json(e) for e in events]})
