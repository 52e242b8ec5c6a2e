"""Token endpoints of the fake (docs/jamf.md §8.1, §8.2) and the bearer check.

- ``POST /api/v1/auth/token`` (Basic) → ``{token, expires}``; bad or missing credentials →
  401 ``{"httpStatus":401,"errors":[]}``;
- ``POST /api/oauth/token`` and ``/api/v1/oauth/token`` (form) → ``{access_token, scope,
  token_type, expires_in}``; a wrong ``grant_type`` → 400 ``invalid_request``; a bad client →
  401 ``invalid_client``; a scope beyond the client's roles → 400 ``invalid_scope``;
- ``POST /api/v1/auth/keep-alive`` → a new user token, the old one revoked (401 for an API
  client's token: keep-alive is for user tokens only, docs/jamf.md §8.1);
- ``POST /api/v1/auth/invalidate-token`` → 204;
- ``GET /api/v1/auth`` → who the token belongs to.
"""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from acmegate.testkit.fakejamf.errors import api_error, forbidden, invalid_token, oauth_error
from acmegate.testkit.fakejamf.inventory import ALL_PRIVILEGES
from acmegate.testkit.fakejamf.server import FAKE_JAMF
from acmegate.testkit.fakejamf.tokens import IssuedToken, rfc3339_ms


def bearer(request: web.Request, privilege: str | None = None) -> IssuedToken | web.Response:
    """The request's valid token, or the response Jamf gives without one (401/403)."""
    fake = request.app[FAKE_JAMF]
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value:
        fake.tokens.record("rejected", detail="no bearer token")
        return invalid_token()
    token = fake.tokens.valid(value.strip())
    if token is None:
        return invalid_token()
    if privilege is not None and privilege not in token.privileges:
        return forbidden(privilege)
    return token


def _privileges(listed: list[str] | None) -> frozenset[str]:
    return frozenset(ALL_PRIVILEGES if listed is None else listed)


async def user_token(request: web.Request) -> web.Response:
    fake = request.app[FAKE_JAMF]
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    username = password = None
    if scheme.lower() == "basic":
        try:
            username, _, password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            username = None
    user = next((u for u in fake.inventory.users if u.username == username), None)
    if user is None or user.password != password:
        fake.tokens.record("refused", kind="user", subject=username, detail="bad credentials")
        return api_error(401)
    lifetime = user.lifetime or fake.inventory.user_token_lifetime
    token = fake.tokens.issue("user", user.username, _privileges(user.privileges), lifetime)
    return web.json_response({"token": token.value, "expires": rfc3339_ms(token.expires_at)})


async def oauth_token(request: web.Request) -> web.Response:
    fake = request.app[FAKE_JAMF]
    if request.path not in fake.inventory.oauth_paths:
        return api_error(404)
    form = await request.post()
    if form.get("grant_type") != "client_credentials":
        return oauth_error(400, "invalid_request", "OAuth 2.0 Parameter: grant_type")
    client_id = str(form.get("client_id", ""))
    client = next((c for c in fake.inventory.api_clients if c.client_id == client_id), None)
    if client is None or not client.enabled or form.get("client_secret") != client.client_secret:
        fake.tokens.record("refused", kind="client", subject=client_id, detail="invalid_client")
        return oauth_error(401, "invalid_client")
    granted = [f"api-role:{role}" for role in client.roles]
    asked = str(form.get("scope", "")).split()
    if any(scope not in granted for scope in asked):
        return oauth_error(400, "invalid_scope", "OAuth 2.0 Parameter: scope")
    lifetime = client.lifetime or fake.inventory.client_token_lifetime
    token = fake.tokens.issue("client", client.client_id, _privileges(client.privileges), lifetime)
    return web.json_response(
        {
            "access_token": token.value,
            "scope": " ".join(asked or granted),
            "token_type": "Bearer",
            # Jamf answers a second short of the configured lifetime (599 for 600, docs/jamf.md
            # §8.1).
            "expires_in": max(int(lifetime) - 1, 1),
        }
    )


async def keep_alive(request: web.Request) -> web.Response:
    fake = request.app[FAKE_JAMF]
    token = bearer(request)
    if isinstance(token, web.Response):
        return token
    if token.kind != "user":
        fake.tokens.record("rejected", token, detail="keep-alive is for user tokens")
        return invalid_token()
    user = next((u for u in fake.inventory.users if u.username == token.subject), None)
    lifetime = (user.lifetime if user else None) or fake.inventory.user_token_lifetime
    fake.tokens.revoke(token, "kept-alive")
    renewed = fake.tokens.issue("user", token.subject, token.privileges, lifetime)
    return web.json_response({"token": renewed.value, "expires": rfc3339_ms(renewed.expires_at)})


async def invalidate(request: web.Request) -> web.Response:
    fake = request.app[FAKE_JAMF]
    token = bearer(request)
    if isinstance(token, web.Response):
        return token
    fake.tokens.revoke(token)
    return web.Response(status=204)


async def whoami(request: web.Request) -> web.Response:
    token = bearer(request)
    if isinstance(token, web.Response):
        return token
    return web.json_response(
        {
            "account": {"username": token.subject, "privileges": sorted(token.privileges)},
            "accountGroups": [],
            "sites": [],
            "authenticationType": "CLIENT_CREDENTIALS" if token.kind == "client" else "JSS",
        }
    )


def add(router: web.UrlDispatcher) -> None:
    router.add_post("/api/v1/auth/token", user_token)
    router.add_post("/api/oauth/token", oauth_token)
    router.add_post("/api/v1/oauth/token", oauth_token)
    router.add_post("/api/v1/auth/keep-alive", keep_alive)
    router.add_post("/api/v1/auth/invalidate-token", invalidate)
    router.add_get("/api/v1/auth", whoami)
