"""The frontend service: the ACME HTTP listener, the results consumer, the sweeper, and the
admin listener (REST API, OpenAPI document, dashboard) when ``admin.enabled``."""

from __future__ import annotations

from importlib.resources import files

import structlog
from aiohttp import web

from acmegate.common.bus import InProcessBus, Queue
from acmegate.common.config import seconds
from acmegate.common.migrations import SchemaMigrations
from acmegate.common.runtime import Runtime, ServiceSpec
from acmegate.frontend.admin.listener import AdminListener
from acmegate.frontend.app import create_app
from acmegate.frontend.client_address import TrustedProxies
from acmegate.frontend.context import Frontend, Timing
from acmegate.frontend.eab import EabSecret
from acmegate.frontend.linker import Linker
from acmegate.frontend.nonces import NonceService
from acmegate.frontend.rate_limits import Limits
from acmegate.frontend.results import ResultsConsumer
from acmegate.frontend.sweeper import Sweeper
from acmegate.frontend.tls import server_context

log = structlog.get_logger(__name__)


def migrations() -> list[SchemaMigrations]:
    """The ``acme`` schema: accounts, orders, authorizations, challenges, the outbox."""
    return [SchemaMigrations.from_folder("acme", files("acmegate.frontend") / "migrations")]


class FrontendService:
    name = "frontend"

    def __init__(self, runtime: Runtime) -> None:
        config = runtime.config
        nonce_key = config.acme.nonce_key
        eab_secret = config.acme.eab_secret
        self.frontend = Frontend(
            config=config,
            pool=runtime.require_pool(),
            bus=runtime.bus,
            clock=runtime.clock,
            linker=Linker(config.server.base_url),
            nonces=NonceService(
                lifetime=seconds(config.acme.nonce_lifetime),
                clock=runtime.clock,
                configured_key=nonce_key.reveal().encode() if nonce_key else None,
            ),
            timing=Timing.from_config(config),
            limits=Limits.from_config(config.rate_limits),
            proxies=TrustedProxies.from_config(config.server.trusted_proxies),
            broadcast_results=not isinstance(runtime.bus, InProcessBus),
            eab=EabSecret(configured=eab_secret.reveal().encode() if eab_secret else None),
        )
        self.results = ResultsConsumer(self.frontend)
        self.sweeper = Sweeper(self.frontend)
        self.admin = AdminListener(self.frontend)
        self._admin_running = False
        self._runner: web.AppRunner | None = None

    @property
    def directory_url(self) -> str:
        return self.frontend.linker.directory

    @property
    def admin_url(self) -> str | None:
        """Where the admin API and dashboard listen (None: not started)."""
        return self.admin.url if self._admin_running else None

    async def start(self) -> None:
        frontend = self.frontend
        await frontend.nonces.refresh(frontend.pool)
        await frontend.eab.load(frontend.pool)
        prefetch = frontend.config.bus.prefetch
        await frontend.bus.consume(Queue.FRONTEND_RESULTS, self.results.handle, prefetch=prefetch)
        await frontend.bus.subscribe(self.results.on_broadcast)
        self.sweeper.start()
        self._runner = web.AppRunner(create_app(frontend), access_log=None, handle_signals=False)
        await self._runner.setup()
        server = frontend.config.server
        site = web.TCPSite(
            self._runner,
            server.host,
            server.port,
            ssl_context=server_context(server.tls),
            backlog=1024,
        )
        await site.start()
        log.info("ACME directory listening", directory=self.directory_url)
        self._admin_running = await self.admin.start()

    async def stop(self) -> None:
        await self.admin.stop()
        self._admin_running = False
        await self.sweeper.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


SPEC = ServiceSpec("frontend", FrontendService, migrations=migrations)
