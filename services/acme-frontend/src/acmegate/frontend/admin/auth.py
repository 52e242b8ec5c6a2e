"""Who may use the admin listener: the admin token, as a bearer header or a dashboard session.

- API clients send ``Authorization: Bearer <admin token>``; it is compared in constant time
  (``hmac.compare_digest``). Missing or wrong: 401 problem, whatever the path.
- A browser logs in once through the form (POST of the token) and gets a session cookie:
  ``<expiry>.<HMAC-SHA256(key, expiry)>`` with a key derived from the admin token, so any
  replica can check it, nothing is stored, and a new admin token ends every session. The
  cookie is HttpOnly and SameSite=Strict, Secure whenever the administrator's connection is
  https (``admin.tls``, an https ``admin.external_url``, or a trusted proxy's
  ``X-Forwarded-Proto``), and it authenticates reads only (GET/HEAD): every change (revoke,
  rotate) needs the bearer header, so a forged cross-site form cannot act.
- Every presented token (bearer header or login form) is checked against the client
  address's failed-logins limit (``rate_limits.failed_admin_logins_per_ip``): a wrong one is
  counted, and an address over the limit is refused with 429 whether its token is right or
  not, so guessing gets no answer at all until the budget refills.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from acmegate.common.errors import unauthorized
from acmegate.common.ids import b64url
from acmegate.frontend.admin.context import ADMIN, SESSION_SECONDS, Admin
from acmegate.frontend.db import rate_limits as limit_db

COOKIE = "acmegate_admin"
LOGIN_PATH = "/login"
# Reachable without credentials: the OpenAPI document and the login form.
PUBLIC_PATHS = frozenset({"/", LOGIN_PATH, "/logout", "/api/v1/openapi.json"})
# Pages that a browser without a session is sent to the login form from.
PAGE_PATHS = frozenset({"/dashboard"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def token_matches(admin: Admin, presented: str) -> bool:
    """Constant-time comparison with the admin token."""
    return hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), admin.token)


def _signature(admin: Admin, expires: int) -> str:
    mac = hmac.new(admin.session_key, str(expires).encode("ascii"), hashlib.sha256)
    return b64url(mac.digest())


def new_session(admin: Admin, *, now: float | None = None) -> tuple[str, int]:
    """A session cookie value and its lifetime in seconds."""
    expires = int(now if now is not None else time.time()) + SESSION_SECONDS
    return f"{expires}.{_signature(admin, expires)}", SESSION_SECONDS


def session_valid(admin: Admin, value: str, *, now: float | None = None) -> bool:
    expires_text, _, signature = value.partition(".")
    if not expires_text.isdigit() or len(expires_text) > 12:
        return False
    expires = int(expires_text)
    if expires <= (now if now is not None else time.time()):
        return False
    return hmac.compare_digest(
        signature.encode("ascii", "replace"), _signature(admin, expires).encode("ascii")
    )


def set_session_cookie(response: web.StreamResponse, request: web.Request, admin: Admin) -> None:
    value, max_age = new_session(admin)
    response.set_cookie(
        COOKIE,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=admin.served_over_https(request),
    )


def clear_session_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/")


async def check_login(request: web.Request, correct: bool) -> None:
    """Apply the failed-logins limit to one presented token (module doc); raises the
    ``rateLimited`` error (429) when the client address is over it."""
    admin = request.app[ADMIN]
    frontend = admin.frontend
    limit = frontend.limits.failed_admin_logins
    if limit is None:
        return
    client = admin.proxies.client_subject(request)
    now = frontend.clock.now()
    if correct:
        tat = await limit_db.over_limit(frontend.pool, limit, client, now)
    else:
        tat = await limit_db.count_event(frontend.pool, limit, client, now)
    if limit.is_over(tat, now):
        raise limit.exceeded(f"client {client}", tat, now)


def _bearer_matches(admin: Admin, header: str) -> bool:
    scheme, _, credentials = header.partition(" ")
    return scheme.lower() == "bearer" and token_matches(admin, credentials.strip())


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in PUBLIC_PATHS:
        return await handler(request)
    admin = request.app[ADMIN]
    header = request.headers.get("Authorization")
    if header is not None:
        correct = _bearer_matches(admin, header)
        await check_login(request, correct)
        if correct:
            return await handler(request)
        raise unauthorized("the admin token is not valid")
    cookie = request.cookies.get(COOKIE)
    if cookie is not None and request.method in ("GET", "HEAD") and session_valid(admin, cookie):
        return await handler(request)
    if request.path in PAGE_PATHS and request.method in ("GET", "HEAD"):
        raise web.HTTPSeeOther(LOGIN_PATH)
    raise unauthorized("authentication required: send Authorization: Bearer <admin token>")
