"""The HTTP endpoint FreeRADIUS calls during EAP-TLS (docs/radius.md has its configuration).

``POST /radius/authorize`` with ``Authorization: Bearer <radius.token>`` (compared in constant
time) and the client certificate or its attributes (presented.py). Answers, in the terms of
rlm_rest's authorize section (raddb/mods-available/rest):

- ``204``: accept (rlm_rest ``ok``);
- ``401`` with ``{"Reply-Message": "acmegate: <why>"}``: reject (rlm_rest processes the body
  of a 401, so the reason reaches the reply and the log);
- ``400`` for a body that holds neither certificate nor attributes, ``503`` when the signal
  source, the signer or acmegate's own database cannot answer (rlm_rest ``invalid``/``fail``:
  FreeRADIUS rejects, failing closed; a database outage is logged once, not per request).

``GET /radius/health`` answers 200 without a token (rlm_rest's ``connect_uri`` and probes).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable, Mapping

import structlog
from aiohttp import web

from acmegate.common.config import ConfigError, SecretUnavailable
from acmegate.common.http_observation import observe_requests
from acmegate.common.outages import OutageLog, unavailable_dependency
from acmegate.common.runtime import Runtime
from acmegate.common.server_header import hide_server_version
from acmegate.policy.radius.check import RadiusCheck, SignerUnavailable
from acmegate.policy.radius.presented import MalformedRequest, parse
from acmegate.policy.radius.trust import CaTrust, TrustError
from acmegate.policy.sources.base import SignalSource, SourceUnavailable

log = structlog.get_logger(__name__)

CHECK = web.AppKey("radius_check", RadiusCheck)
TOKEN = web.AppKey("radius_token", bytes)
MAX_BODY = 64 * 1024
# One log line per database outage the endpoint sees (common/outages.py).
_OUTAGES = OutageLog("radius")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# Anything but visible ASCII and spaces: a reason may quote what the caller sent (an issuer
# name with a line feed), and a header value must not break the header block.
_NOT_HEADER_TEXT = re.compile(r"[^\x20-\x7e]")


def _reason_header(reason: str) -> dict[str, str]:
    return {"X-Acmegate-Reason": _NOT_HEADER_TEXT.sub("?", reason)[:300]}


def _answer(status: int, reason: str, *, challenge: bool = False) -> web.Response:
    headers = _reason_header(reason)
    if challenge:
        headers["WWW-Authenticate"] = 'Bearer realm="acmegate-radius"'
    return web.json_response(
        {"Reply-Message": f"acmegate: {reason}"}, status=status, headers=headers
    )


@web.middleware
async def _bearer(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path == "/radius/health":
        return await handler(request)
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        value.strip().encode(), request.app[TOKEN]
    ):
        # RFC 6750 §3: 401 with a challenge; never say which part was wrong.
        return _answer(401, "the RADIUS endpoint needs its bearer token", challenge=True)
    return await handler(request)


async def authorize(request: web.Request) -> web.Response:
    try:
        presented = parse(await request.read(), request.content_type)
    except MalformedRequest as exc:
        return _answer(400, str(exc))
    try:
        decision = await request.app[CHECK].decide(presented)
    except SourceUnavailable as exc:
        return _answer(503, f"signal source {exc.source!r} is unavailable")
    except SignerUnavailable as exc:
        return _answer(503, str(exc))
    except Exception as exc:
        dependency = unavailable_dependency(exc)
        if dependency is None:
            raise
        # rlm_rest turns a 5xx into "fail", which the documented policy rejects (docs/radius.md).
        _OUTAGES.down(dependency, exc)
        return _answer(503, f"acmegate's {dependency} is unavailable")
    _OUTAGES.up()
    if decision.accept:
        return web.Response(status=204, headers=_reason_header(decision.reason))
    return _answer(401, decision.reason)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def radius_app(check: RadiusCheck, token: str) -> web.Application:
    """The endpoint's application (tests mount it on their own runner)."""
    app = web.Application(
        client_max_size=MAX_BODY,
        middlewares=[observe_requests("radius", service="policy"), _bearer],
    )
    app[CHECK] = check
    app[TOKEN] = token.encode()
    app.router.add_post("/radius/authorize", authorize)
    app.router.add_get("/radius/health", health)
    return hide_server_version(app)


class RadiusEndpoint:
    """The listener on ``radius.host:radius.port``, inside the policy service process."""

    def __init__(self, runtime: Runtime, sources: Mapping[str, SignalSource]) -> None:
        self._runtime = runtime
        self._sources = sources
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        """Read the CA certificates and the token, then listen."""
        config = self._runtime.config
        radius = config.radius
        policy = next(p for p in config.lookup_policies if p.name == radius.lookup_policy)
        if radius.token is None:
            raise ConfigError("$.radius.token: required when the RADIUS endpoint is enabled")
        try:
            token = radius.token.reveal()
            trust = CaTrust.from_config(config, radius.certificate_authorities)
        except (SecretUnavailable, TrustError) as exc:
            raise ConfigError(f"radius: {exc}") from exc
        check = RadiusCheck(self._runtime, policy, self._sources[policy.signal_source], trust)
        self._runner = web.AppRunner(radius_app(check, token), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, radius.host, radius.port).start()
        self.url = f"http://{radius.host}:{radius.port}"
        log.info("RADIUS endpoint listening", url=f"{self.url}/radius/authorize")

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
