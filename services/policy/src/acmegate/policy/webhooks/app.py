"""The receiver of Jamf Pro webhooks (docs/jamf.md "Webhooks"), a listener of the policy service.

``POST /jamf/webhooks/<signal source>`` with the authentication configured in Jamf (Basic, or
one header and value), compared in constant time; a wrong or missing secret is ``401`` and
changes nothing. Accepted webhooks are rate limited (a token bucket; ``429`` beyond it) and
bodies are capped at 64 KiB. Nothing in a payload is believed: the devices it names have their
cached lookups dropped and, for events that can mean "no longer managed" or "left a group"
(payload.py), are re-checked at once by Revoke On Failure (recheck.py) with a fresh lookup. The
answer (``202``) does not wait for the re-check: Jamf gives a webhook a few seconds.

``GET /jamf/webhooks/health`` answers 200 without authentication (probes).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import time
from collections.abc import Awaitable, Callable, Mapping

import structlog
from aiohttp import web

from acmegate.common.config import ConfigError, SecretUnavailable
from acmegate.common.config.model import JamfWebhooksConfig, WebhookBasicAuth
from acmegate.common.http_observation import observe_requests
from acmegate.common.runtime import Runtime
from acmegate.common.server_header import hide_server_version
from acmegate.policy.recheck import RevocationChecker
from acmegate.policy.sources.base import SignalSource, SourceUnavailable
from acmegate.policy.sources.jamf import JamfSource
from acmegate.policy.sources.measured import MeasuredSource
from acmegate.policy.webhooks.payload import MalformedWebhook, Named, parse

log = structlog.get_logger(__name__)

MAX_BODY = 64 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Check = Callable[[web.Request], bool]


class TokenBucket:
    """``rate`` per second, at most ``burst`` at once."""

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._tokens = float(burst)
        self._clock = clock
        self._at = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


def authenticator(config: JamfWebhooksConfig) -> Check:
    """The check of the configured authentication (secrets read once, here)."""
    auth = config.auth
    if auth is None:
        raise ConfigError("$.jamf_webhooks.auth: required when webhooks are enabled")
    try:
        if isinstance(auth, WebhookBasicAuth):
            expected = f"{auth.username}:{auth.password.reveal()}".encode()

            def basic(request: web.Request) -> bool:
                scheme, _, value = request.headers.get("Authorization", "").partition(" ")
                try:
                    given = base64.b64decode(value.strip(), validate=True)
                except (binascii.Error, ValueError):
                    return False
                return scheme.lower() == "basic" and hmac.compare_digest(given, expected)

            return basic
        header, wanted = auth.header, auth.value.reveal().encode()
    except SecretUnavailable as exc:
        raise ConfigError(f"jamf_webhooks: {exc}") from exc

    def by_header(request: web.Request) -> bool:
        return hmac.compare_digest(request.headers.get(header, "").strip().encode(), wanted)

    return by_header


class WebhookActions:
    """What an authenticated webhook does: drop cached lookups, re-check at once."""

    def __init__(
        self, sources: Mapping[str, SignalSource], checker: RevocationChecker | None
    ) -> None:
        self._sources = sources
        self._checker = checker
        self._tasks: set[asyncio.Task[None]] = set()

    def jamf(self, name: str) -> JamfSource | None:
        source = self._sources.get(name)
        inner = source.inner if isinstance(source, MeasuredSource) else source
        return inner if isinstance(inner, JamfSource) else None

    def accept(self, source: JamfSource, named: Named) -> None:
        for identity in named.identities:
            source.forget(serial_number=identity, udid=identity)
        if named.identities or named.ids:
            task = asyncio.get_running_loop().create_task(self._follow(source, named))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _follow(self, source: JamfSource, named: Named) -> None:
        try:
            identities = list(named.identities)
            if named.ids:
                resolved = await source.identities_of(named.kind, named.ids)
                for identity in resolved:
                    source.forget(serial_number=identity, udid=identity)
                identities += resolved
            if named.recheck and self._checker is not None and identities:
                done = await self._checker.check_devices(source.name, identities)
                log.info(
                    "webhook re-check",
                    webhook_event=named.event,
                    source=source.name,
                    checked=done.checked,
                    revoked=done.revoked,
                    unavailable=done.unavailable,
                )
        except SourceUnavailable as exc:
            # The periodic re-check still comes: nothing is lost, only not sped up.
            log.warning("webhook re-check postponed", source=exc.source, reason=exc.reason)
        except Exception:
            log.exception("webhook re-check failed", webhook_event=named.event, source=source.name)

    async def close(self) -> None:
        tasks, self._tasks = set(self._tasks), set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


ACTIONS = web.AppKey("webhook_actions", WebhookActions)
AUTHENTIC: web.AppKey[Check] = web.AppKey("webhook_auth")
BUCKET = web.AppKey("webhook_bucket", TokenBucket)
REALM = web.AppKey("webhook_realm", str)


def _problem(status: int, detail: str, **headers: str) -> web.Response:
    return web.json_response({"status": status, "detail": detail}, status=status, headers=headers)


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path == "/jamf/webhooks/health":
        return await handler(request)
    if not request.app[AUTHENTIC](request):
        # Never say which part was wrong.
        challenge = {"WWW-Authenticate": request.app[REALM]} if request.app[REALM] else {}
        return _problem(401, "the webhook is not authenticated", **challenge)
    if not request.app[BUCKET].take():
        return _problem(429, "too many webhooks", **{"Retry-After": "1"})
    return await handler(request)


async def receive(request: web.Request) -> web.Response:
    actions = request.app[ACTIONS]
    source = actions.jamf(request.match_info["source"])
    if source is None:
        return _problem(404, "no Jamf Pro signal source of that name")
    try:
        named = parse(await request.read())
    except MalformedWebhook as exc:
        return _problem(400, str(exc))
    except web.HTTPRequestEntityTooLarge:
        return _problem(413, "the webhook is too large")
    if named is None:
        return web.json_response({"status": "ignored"}, status=202)
    actions.accept(source, named)
    log.info(
        "webhook accepted",
        webhook_event=named.event,
        source=source.name,
        devices=len(named.identities) + len(named.ids),
        recheck=named.recheck,
    )
    return web.json_response({"status": "accepted"}, status=202)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def webhook_app(
    config: JamfWebhooksConfig, actions: WebhookActions, *, bucket: TokenBucket | None = None
) -> web.Application:
    """The receiver's application (tests may mount it on their own runner)."""
    app = web.Application(
        client_max_size=MAX_BODY,
        middlewares=[observe_requests("jamf_webhooks", service="policy"), _guard],
    )
    app[ACTIONS] = actions
    app[AUTHENTIC] = authenticator(config)
    app[BUCKET] = bucket or TokenBucket(config.rate_limit, config.burst)
    app[REALM] = (
        'Basic realm="acmegate-jamf-webhooks"' if isinstance(config.auth, WebhookBasicAuth) else ""
    )
    app.router.add_get("/jamf/webhooks/health", health)
    app.router.add_post("/jamf/webhooks/{source}", receive)
    return hide_server_version(app)


class WebhookReceiver:
    """The listener on ``jamf_webhooks.host:port``, inside the policy service process."""

    def __init__(
        self,
        runtime: Runtime,
        sources: Mapping[str, SignalSource],
        checker: RevocationChecker | None,
    ) -> None:
        self._config = runtime.config.jamf_webhooks
        self.actions = WebhookActions(sources, checker)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        config = self._config
        self._runner = web.AppRunner(webhook_app(config, self.actions), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, config.host, config.port).start()
        self.url = f"http://{config.host}:{config.port}/jamf/webhooks"
        log.info("Jamf webhook receiver listening", url=self.url)

    async def stop(self) -> None:
        await self.actions.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
