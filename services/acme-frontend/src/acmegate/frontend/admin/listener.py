"""Starting and stopping the admin listener inside the frontend service (DESIGN.md: the
frontend owns the admin API)."""

from __future__ import annotations

import structlog
from aiohttp import web

from acmegate.common.config import SecretUnavailable
from acmegate.frontend.admin.app import create_admin_app
from acmegate.frontend.admin.context import Admin
from acmegate.frontend.context import Frontend

log = structlog.get_logger(__name__)


class AdminListener:
    """The admin API and dashboard on ``admin.host:admin.port``."""

    def __init__(self, frontend: Frontend) -> None:
        self.frontend = frontend
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        admin = self.frontend.config.admin
        return f"http://{admin.host}:{admin.port}"

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
        app = create_admin_app(Admin(self.frontend, token.encode("utf-8")))
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, config.host, config.port).start()
        log.info("admin API listening", url=self.url, openapi=f"{self.url}/api/v1/openapi.json")
        return True

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
