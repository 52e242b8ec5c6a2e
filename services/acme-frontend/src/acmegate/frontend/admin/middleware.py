"""Errors and headers of every admin response.

An :class:`AcmeError` becomes its problem document (``problems.py``); aiohttp's own 404/405/
413 become problems too; a database or broker outage is 503 with ``Retry-After`` (logged once
per outage); anything else is logged and answered 500 without a traceback.
Every response is ``no-store`` and may not be framed or sniffed; over https it carries
``Strict-Transport-Security`` (RFC 6797).
"""

from __future__ import annotations

import structlog
from aiohttp import web

from acmegate.common.errors import AcmeError
from acmegate.common.ids import new_correlation_id
from acmegate.common.logging import bind_correlation_id, current_correlation_id
from acmegate.common.outages import OutageLog, unavailable_dependency
from acmegate.frontend.admin.auth import Handler
from acmegate.frontend.admin.context import ADMIN
from acmegate.frontend.admin.problems import error_problem, problem

log = structlog.get_logger(__name__)
# One log line per database/broker outage the admin listener sees (common/outages.py).
_OUTAGES = OutageLog("admin")

_HTTP_DETAIL = {
    404: "no such resource",
    405: "method not allowed",
    413: "request body too large",
}


@web.middleware
async def admin_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    with bind_correlation_id(current_correlation_id() or new_correlation_id()):
        response: web.StreamResponse
        try:
            response = await handler(request)
        except AcmeError as error:
            response = error_problem(error)
        except web.HTTPException as exc:
            if exc.status < 400:
                # Redirects (to the login form) are answers, not errors.
                response = web.Response(status=exc.status, headers=exc.headers)
            else:
                response = problem(exc.status, _HTTP_DETAIL.get(exc.status, exc.reason))
                if "Allow" in exc.headers:
                    response.headers["Allow"] = exc.headers["Allow"]
        except Exception as exc:
            dependency = unavailable_dependency(exc)
            if dependency is None:
                log.exception("admin request failed", path=request.path, method=request.method)
                response = problem(500, "internal error; see the gateway's log")
            else:
                _OUTAGES.down(dependency, exc)
                response = problem(503, f"the gateway's {dependency} is unavailable; retry later")
        else:
            if response.status < 500 and request.path.startswith("/api/"):
                _OUTAGES.up()
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        admin = request.app[ADMIN]
        if admin.hsts_max_age and admin.served_over_https(request):
            response.headers["Strict-Transport-Security"] = f"max-age={admin.hsts_max_age}"
        return response
