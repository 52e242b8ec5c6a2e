"""RFC 7807 problem documents of the admin API (``type: about:blank``: plain HTTP statuses).

The admin API is not ACME, so it does not use the ACME URNs of ``frontend/problems.py``; an
:class:`AcmeError` raised by a handler (or sent back by the signer or the policy service)
becomes the HTTP status its kind means, with its detail.
"""

from __future__ import annotations

from http import HTTPStatus

import msgspec
from aiohttp import web

from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.frontend import retry_after
from acmegate.frontend.admin.views import ProblemDocument

PROBLEM_CONTENT_TYPE = "application/problem+json"

_STATUS: dict[ErrorKind, int] = {
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.MALFORMED: 400,
    ErrorKind.BAD_REVOCATION_REASON: 400,
    ErrorKind.UNAUTHORIZED: 401,
    ErrorKind.METHOD_NOT_ALLOWED: 405,
    ErrorKind.CONFLICT: 409,
    ErrorKind.PAYLOAD_TOO_LARGE: 413,
    ErrorKind.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorKind.RATE_LIMITED: 429,
    ErrorKind.SERVER_INTERNAL: 500,
    ErrorKind.UNAVAILABLE: 503,
}


def status_of(error: AcmeError) -> int:
    """The HTTP status of ``error`` (anything a client caused and not listed: 400)."""
    return _STATUS.get(error.kind, 400)


def problem(status: int, detail: str, *, wait: int | None = None) -> web.Response:
    """An ``application/problem+json`` response with ``type: about:blank``; ``Retry-After``
    on 429 and 503 (``wait`` seconds, or retry_after.UNAVAILABLE)."""
    document = ProblemDocument("about:blank", HTTPStatus(status).phrase, status, detail)
    response = web.Response(
        body=msgspec.json.encode(document), status=status, content_type=PROBLEM_CONTENT_TYPE
    )
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="acmegate admin"'
    elif status in (429, 503):
        response.headers["Retry-After"] = retry_after.header(
            wait if wait is not None else retry_after.UNAVAILABLE
        )
    return response


def error_problem(error: AcmeError) -> web.Response:
    return problem(status_of(error), error.detail, wait=error.retry_after)
