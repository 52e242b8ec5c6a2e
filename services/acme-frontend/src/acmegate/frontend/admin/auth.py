"""Who may use the admin listener: the admin token, as a bearer header or a dashboard session.

- API clients send ``Authorization: Bearer <admin token>``; it is compared in constant time
  (``hmac.compare_digest``). Missing or wrong: 401 problem, whatever the path.
- A browser logs in once through the form (POST of the token) and gets a session cookie:
  ``<expiry>.<HMAC-SHA256(key, expiry)>`` with a key derived from the admin token, so any
  replica can check it, nothing is stored, and a new admin token ends every session. The
  cookie is HttpOnly and SameSite=Strict, and it authenticates reads only (GET/HEAD): every
  change (revoke, rotate) needs the bearer header, so a forged cross-site form cannot act.
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
        secure=request.secure,
    )


def clear_session_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/")


def authenticated(request: web.Request) -> bool:
    """True for a correct bearer token, or a valid session cookie on a read."""
    admin = request.app[ADMIN]
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, credentials = header.partition(" ")
        return scheme.lower() == "bearer" and token_matches(admin, credentials.strip())
    cookie = request.cookies.get(COOKIE)
    if cookie is not None and request.method in ("GET", "HEAD"):
        return session_valid(admin, cookie)
    return False


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in PUBLIC_PATHS or authenticated(request):
        return await handler(request)
    if request.path in PAGE_PATHS and request.method in ("GET", "HEAD"):
        raise web.HTTPSeeOther(LOGIN_PATH)
    if request.headers.get("Authorization") is None:
        raise unauthorized("authentication required: send Authorization: Bearer <admin token>")
    raise unauthorized("the admin token is not valid")
