"""Starting and stopping the admin listener inside the frontend service (docs/design.md "Ownership":
the frontend owns the admin API)."""

from __future__ import annotations

import structlog
from aiohttp import web

from acmegate.common.config import SecretUnavailable, seconds
from acmegate.frontend.admin.app import create_admin_app
from acmegate.frontend.admin.context import Admin
from acmegate.frontend.client_address import TrustedProxies
from acmegate.frontend.context import Frontend
from acmegate.frontend.tls import server_context

log = structlog.get_logger(__name__)

_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


class AdminListener:
    """The admin API and dashboard on ``admin.host:admin.port``."""

    def __init__(self, frontend: Frontend) -> None:
        self.frontend = frontend
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Where the listener listens (the scheme follows ``admin.tls``)."""
        admin = self.frontend.config.admin
        scheme = "https" if admin.tls else "http"
        return f"{scheme}://{admin.host}:{admin.port}"

    async def start(self) -> bool:
        """Listen if ``admin.enabled``; False (and an error in the log) without a token.

        A token that is configured but cannot be read (its environment variable or file is
        missing) stops the frontend with an error naming ``$.admin.token``.
        """
        config = self.frontend.config.admin
        if not config.enabled:
            return False
        if config.token is None:
            log.error(
                "admin listener not started: $.admin.token is not set; give it as "
                "{env: NAME} or {file: PATH}, or set admin.enabled: false"
            )
            return False
        try:
            token = config.token.reveal()
        except SecretUnavailable as exc:
            raise SecretUnavailable(f"$.admin.token: {exc}") from exc
        admin = Admin(
            self.frontend,
            token.encode("utf-8"),
            proxies=TrustedProxies.from_config(config.trusted_proxies),
            https=config.base_url.startswith("https:"),
            hsts_max_age=seconds(config.hsts_max_age),
        )
        app = create_admin_app(admin)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, config.host, config.port, ssl_context=server_context(config.tls)
        )
        await site.start()
        if not admin.https and config.host not in _LOOPBACK:
            # The admin token and the session cookie would cross the network in clear.
            log.warning(
                "admin listener serves plain HTTP on a non-loopback address: set admin.tls, "
                "or put it behind a TLS proxy and set admin.external_url to its https URL",
                host=config.host,
            )
        log.info("admin API listening", url=self.url, openapi=f"{self.url}/api/v1/openapi.json")
        return True

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
