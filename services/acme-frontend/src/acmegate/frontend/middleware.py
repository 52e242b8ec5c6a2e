"""Response headers and error rendering for every ACME response (docs/design.md "Handlers").

- ``Replay-Nonce`` on every response, errors included (RFC 8555 §6.5: a ``badNonce`` must
  carry a fresh one), and ``Cache-Control: no-store`` (§7.2);
- ``Link: <directory>;rel="index"`` added to (never replacing) the handler's links (§7.1);
- ``Strict-Transport-Security`` when the client's connection is https (``server.tls``, an
  https ``external_url``, or a trusted proxy's ``X-Forwarded-Proto``; RFC 6797 §7.2 forbids
  it over plain HTTP, where clients ignore it anyway);
- an :class:`AcmeError` becomes its problem document; aiohttp's 404/405/413 become problems
  too; a database or broker outage is ``503`` with ``Retry-After`` (logged once per outage);
  anything else is logged and answered ``serverInternal``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.common.ids import new_correlation_id
from acmegate.common.logging import bind_correlation_id, current_correlation_id
from acmegate.common.outages import OutageLog, unavailable_dependency
from acmegate.frontend import retry_after
from acmegate.frontend.context import FRONTEND
from acmegate.frontend.db.gate import StaleAccount
from acmegate.frontend.problems import problem_response

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CORRELATION_ID = web.RequestKey("correlation_id", str)
# The Strict-Transport-Security value (absent: hsts_max_age is 0), and whether every request
# arrives over https whatever the socket says (server.tls or an https external_url).
HSTS = web.AppKey("hsts", str)
ALWAYS_HTTPS = web.AppKey("always_https", bool)

_HTTP_KINDS = {
    404: (ErrorKind.NOT_FOUND, "no such resource"),
    405: (ErrorKind.METHOD_NOT_ALLOWED, "method not allowed; ACME resources need POST-as-GET"),
    413: (ErrorKind.PAYLOAD_TOO_LARGE, "request body too large"),
}


@web.middleware
async def acme_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    frontend = request.app[FRONTEND]
    # The one the access log (common/http_observation.py) gave this request, if it ran.
    correlation_id = current_correlation_id() or new_correlation_id()
    request[CORRELATION_ID] = correlation_id
    with bind_correlation_id(correlation_id):
        try:
            response = await handler(request)
        except AcmeError as error:
            if isinstance(error, StaleAccount):
                frontend.accounts.forget(error.account_id)
            response = problem_response(error)
        except web.HTTPException as exc:
            kind, detail = _HTTP_KINDS.get(exc.status, (ErrorKind.MALFORMED, exc.reason))
            response = problem_response(AcmeError(kind, detail))
            if exc.status == 405 and "Allow" in exc.headers:
                response.headers["Allow"] = exc.headers["Allow"]
        except Exception as exc:  # noqa: BLE001 (logged with its traceback in _unexpected)
            response = _unexpected(frontend.outages, request, exc)
        else:
            # Every POST reads the database (its nonce and account), so a good answer to one
            # means any outage is over.
            if request.method == "POST" and response.status < 500:
                frontend.outages.up()
        response.headers["Replay-Nonce"] = frontend.nonces.issue()
        response.headers["Cache-Control"] = "no-store"
        response.headers.add("Link", f'<{frontend.linker.index_of(request.path)}>;rel="index"')
        hsts = request.app.get(HSTS)
        if hsts is not None and (request.app[ALWAYS_HTTPS] or frontend.proxies.https(request)):
            response.headers["Strict-Transport-Security"] = hsts
        return response


def _unexpected(outages: OutageLog, request: web.Request, exc: Exception) -> web.Response:
    """``503`` with ``Retry-After`` when a dependency is down (RFC 8555 §6.6; logged once per
    outage), else ``500 serverInternal`` with the traceback in the log."""
    dependency = unavailable_dependency(exc)
    if dependency is None:
        log.exception("unhandled error", path=request.path, method=request.method)
        return problem_response(
            AcmeError(ErrorKind.SERVER_INTERNAL, "internal error; please retry later")
        )
    outages.down(dependency, exc)
    return problem_response(
        AcmeError(
            ErrorKind.UNAVAILABLE,
            f"the gateway's {dependency} is unavailable; retry later",
            retry_after=retry_after.UNAVAILABLE,
        )
    )
