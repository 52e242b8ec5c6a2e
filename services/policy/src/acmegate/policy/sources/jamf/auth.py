"""Jamf Pro API tokens: API client credentials or a user's bearer token (docs/jamf.md §8.1).

- API client (Jamf Pro ≥ 10.49, the guide's recommended "Client Credentials"):
  ``POST /api/oauth/token`` (the path Jamf's guides document), falling back to
  ``POST /api/v1/oauth/token`` (the path of the 11.23+ OpenAPI schema) on 404, form-encoded
  ``grant_type=client_credentials``; the answer's ``expires_in`` drives renewal. Access tokens
  cannot be kept alive (user tokens only, docs/jamf.md §8.1): a new one is fetched.
- User (the guide's "Bearer Token"): ``POST /api/v1/auth/token`` with Basic credentials; close
  to expiry the token is renewed with ``POST /api/v1/auth/keep-alive`` (which revokes the old
  one), and ``POST /api/v1/auth/invalidate-token`` ends it when the source closes.

Tokens are cached per source and renewed before they expire, a margin of a fifth of their lifetime
(at most a minute) ahead, as the public SDKs do (docs/jamf.md §8.1). One lock makes concurrent
lookups share one token request. Deadlines are kept on the monotonic clock: the wall-clock
``expires`` of Jamf is turned into a lifetime once, so a skewed gateway clock costs at most one
early renewal.
"""

from __future__ import annotations

import abc
import asyncio
import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from acmegate.common.config import Secret, SecretUnavailable
from acmegate.policy.sources.jamf.errors import JamfError, JamfFailure
from acmegate.policy.sources.jamf.http import JamfHttp, JamfResponse

log = structlog.get_logger(__name__)

Monotonic = Callable[[], float]
WallClock = Callable[[], datetime]

# When Jamf's answer gives no usable lifetime, assume the shortest one seen in the wild.
_FALLBACK_LIFETIME = 60.0
# A user token this close to expiry is replaced rather than kept alive.
_KEEP_ALIVE_FLOOR = 1.0

OAUTH_PATHS = ("/api/oauth/token", "/api/v1/oauth/token")
USER_TOKEN_PATH = "/api/v1/auth/token"  # noqa: S105 - a path, not a password
KEEP_ALIVE_PATH = "/api/v1/auth/keep-alive"
INVALIDATE_PATH = "/api/v1/auth/invalidate-token"


def refresh_margin(lifetime: float) -> float:
    """How long before expiry a token of ``lifetime`` seconds is renewed."""
    return min(60.0, max(lifetime / 5, 0.5))


def parse_expires(value: Any, now: datetime) -> float | None:
    """Seconds from ``now`` until a Jamf ``expires`` (RFC 3339, or epoch ms on old servers)."""
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            moment = datetime.fromtimestamp(value / 1000, UTC)
        elif isinstance(value, str):
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
        else:
            return None
    except (ValueError, OverflowError, OSError):
        return None
    return (moment - now).total_seconds()


@dataclass(frozen=True, slots=True)
class Token:
    """A bearer token and when it stops working (monotonic seconds)."""

    value: str
    deadline: float
    lifetime: float

    def remaining(self, now: float) -> float:
        return self.deadline - now


class TokenSource(Protocol):
    """Where a Jamf client gets its bearer token."""

    method: str

    async def token(self) -> str:
        """A token valid for a while yet; :class:`JamfError` if none can be had."""

    def discard(self, value: str) -> None:
        """Forget ``value`` (Jamf answered 401 to it): the next :meth:`token` fetches anew."""

    async def close(self) -> None:
        """End the session with Jamf (user tokens are invalidated)."""


def _error_code(response: JamfResponse) -> str:
    body = response.body
    if isinstance(body, dict):
        if isinstance(body.get("error"), str):
            return str(body["error"])
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("code") or "")
    return ""


def _reveal(secret: Secret, what: str) -> str:
    try:
        return secret.reveal()
    except SecretUnavailable as exc:
        raise JamfError(JamfFailure.CREDENTIALS, f"the {what} is unavailable: {exc}") from exc


class _CachedTokens(abc.ABC):
    """The caching and single-flight shared by both token kinds; each says how it renews."""

    method = "?"

    def __init__(self, http: JamfHttp, *, monotonic: Monotonic, wall: WallClock) -> None:
        self._http = http
        self._monotonic = monotonic
        self._wall = wall
        self._token: Token | None = None
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        current = self._token
        if current is not None and self._fresh_enough(current):
            return current.value
        async with self._lock:
            current = self._token
            if current is not None and self._fresh_enough(current):
                return current.value
            self._token = await self._renew(current)
            return self._token.value

    def discard(self, value: str) -> None:
        if self._token is not None and self._token.value == value:
            self._token = None

    async def close(self) -> None:
        self._token = None

    def _fresh_enough(self, token: Token) -> bool:
        return token.remaining(self._monotonic()) > refresh_margin(token.lifetime)

    def _made(self, value: str, lifetime: float | None) -> Token:
        if lifetime is None or lifetime <= 0:
            log.warning("Jamf token lifetime unusable, assuming a short one", method=self.method)
            lifetime = _FALLBACK_LIFETIME
        log.debug("Jamf token obtained", method=self.method, lifetime=round(lifetime, 1))
        return Token(value, self._monotonic() + lifetime, lifetime)

    @abc.abstractmethod
    async def _renew(self, current: Token | None) -> Token:
        """A new token; ``current`` is the cached one, if any (a user token renews with it)."""


class ClientCredentialsTokens(_CachedTokens):
    """Access tokens of a Jamf Pro API client (OAuth 2.0 client_credentials, RFC 6749 §4.4)."""

    method = "client credentials"

    def __init__(
        self,
        http: JamfHttp,
        client_id: str,
        client_secret: Secret,
        *,
        monotonic: Monotonic = time.monotonic,
        wall: WallClock = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(http, monotonic=monotonic, wall=wall)
        self._client_id = client_id
        self._secret = client_secret
        # The token path that answered, once known (one of OAUTH_PATHS).
        self.path: str | None = None

    async def _renew(self, current: Token | None) -> Token:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": _reveal(self._secret, "API client secret"),
        }
        paths = (self.path,) if self.path else OAUTH_PATHS
        response: JamfResponse | None = None
        for path in paths:
            response = await self._http.request("POST", path, form=form)
            if response.status != 404:
                self.path = path
                break
        assert response is not None
        if response.status == 404:
            raise JamfError(
                JamfFailure.PROTOCOL,
                "neither POST /api/oauth/token nor POST /api/v1/oauth/token exists "
                "(API clients need Jamf Pro 10.49 or later)",
            )
        body = response.body
        if response.status == 200 and isinstance(body, dict):
            value = body.get("access_token")
            expires_in = body.get("expires_in")
            if isinstance(value, str) and value:
                lifetime = (
                    float(expires_in)
                    if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool)
                    else None
                )
                return self._made(value, lifetime)
        raise self._refused(response)

    def _refused(self, response: JamfResponse) -> JamfError:
        code = _error_code(response)
        if response.status in (400, 401):
            return JamfError(
                JamfFailure.CREDENTIALS,
                f"Jamf Pro refused API client {self._client_id!r} "
                f"(HTTP {response.status}{' ' + code if code else ''}): "
                "check the client ID and secret, and that the client is enabled",
            )
        if response.status == 403:
            return JamfError(
                JamfFailure.PRIVILEGE, f"the token request was forbidden (HTTP 403 {code})"
            )
        return JamfError(
            JamfFailure.PROTOCOL, f"the token request answered HTTP {response.status} {code}"
        )


class UserTokens(_CachedTokens):
    """Bearer tokens of a Jamf Pro user account (Basic → token, keep-alive, invalidate)."""

    method = "bearer token"

    def __init__(
        self,
        http: JamfHttp,
        username: str,
        password: Secret,
        *,
        monotonic: Monotonic = time.monotonic,
        wall: WallClock = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(http, monotonic=monotonic, wall=wall)
        self._username = username
        self._password = password

    async def _renew(self, current: Token | None) -> Token:
        if current is not None and current.remaining(self._monotonic()) > _KEEP_ALIVE_FLOOR:
            # Keep-alive issues a new token with a fresh lifetime and revokes the old.
            response = await self._http.request(
                "POST", KEEP_ALIVE_PATH, headers={"Authorization": f"Bearer {current.value}"}
            )
            token = self._from(response)
            if token is not None:
                return token
            log.info("Jamf keep-alive refused, requesting a new token", status=response.status)
        password = _reveal(self._password, "Jamf user password")
        basic = base64.b64encode(f"{self._username}:{password}".encode()).decode("ascii")
        response = await self._http.request(
            "POST", USER_TOKEN_PATH, headers={"Authorization": f"Basic {basic}"}
        )
        token = self._from(response)
        if token is not None:
            return token
        code = _error_code(response)
        if response.status == 401:
            raise JamfError(
                JamfFailure.CREDENTIALS,
                f"Jamf Pro refused user {self._username!r} (HTTP 401{' ' + code if code else ''}):"
                " check the username and password (SSO accounts cannot use the API)",
            )
        if response.status == 403:
            raise JamfError(JamfFailure.PRIVILEGE, f"the token request was forbidden ({code})")
        if response.status == 404:
            raise JamfError(
                JamfFailure.PROTOCOL,
                "POST /api/v1/auth/token does not exist (bearer tokens need Jamf Pro 10.35+)",
            )
        raise JamfError(
            JamfFailure.PROTOCOL, f"the token request answered HTTP {response.status} {code}"
        )

    def _from(self, response: JamfResponse) -> Token | None:
        body = response.body
        if response.status != 200 or not isinstance(body, dict):
            return None
        value = body.get("token")
        if not isinstance(value, str) or not value:
            return None
        return self._made(value, parse_expires(body.get("expires"), self._wall()))

    async def close(self) -> None:
        """Invalidate the token (docs/jamf.md §8.1) so it does not outlive the process; best
        effort."""
        current, self._token = self._token, None
        if current is None or current.remaining(self._monotonic()) <= 0:
            return
        try:
            await self._http.request(
                "POST",
                INVALIDATE_PATH,
                headers={"Authorization": f"Bearer {current.value}"},
                retry=False,
                timeout=min(self._http.timeout, 5.0),
            )
        except JamfError as exc:
            log.info("Jamf token not invalidated", reason=str(exc))
