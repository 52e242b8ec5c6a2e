"""``/api/v1/enrollments``: finished enrollments, completed and failed (with the reason)."""

from __future__ import annotations

from aiohttp import web

from acmegate.frontend.admin.context import ADMIN
from acmegate.frontend.admin.params import query_choice, query_int
from acmegate.frontend.admin.render import json_response
from acmegate.frontend.db.enrollments import OUTCOMES, recent_events


async def list_enrollments(request: web.Request) -> web.Response:
    outcome = query_choice(request, "outcome", OUTCOMES)
    limit = query_int(request, "limit", default=50, minimum=1, maximum=1000)
    events = await recent_events(
        request.app[ADMIN].frontend.pool,
        outcome=outcome,
        limit=limit,
    )
    return json_response({"enrollments": events})
