"""The health listener of each process, for orchestrators and Prometheus: ``/healthz`` (the
process answers), ``/readyz`` (its database and broker connections work), as Kubernetes probes
expect, and ``/metrics`` (every metric of this process, ``acmegate.common.metrics``)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from aiohttp import web

from acmegate.common import metrics
from acmegate.common.http_observation import observe_requests
from acmegate.common.runtime import Runtime
from acmegate.common.server_header import hide_server_version

# How long /readyz waits for the database; a probe of /readyz must wait longer than this
# (deploy/k8s readiness probes, the image's HEALTHCHECK).
DATABASE_CHECK_TIMEOUT = 2.0


@dataclass
class HealthServer:
    runtime: Runtime
    host: str
    port: int
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Where the listener answers."""
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        # Probes and scrapes come every few seconds: counted in /metrics, not access-logged.
        observe = observe_requests("health", service="health", log_access=False)
        app = hide_server_version(web.Application(middlewares=[observe]))
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, _: web.Request) -> web.Response:
        problems = []
        if not self.runtime.bus.ready():
            problems.append("message bus not connected")
        if self.runtime.pool is not None:
            try:
                await self.runtime.pool.fetchval("SELECT 1", timeout=DATABASE_CHECK_TIMEOUT)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                problems.append(f"database: {type(exc).__name__}")
        if problems:
            return web.json_response({"status": "unavailable", "problems": problems}, status=503)
        return web.json_response({"status": "ready"})

    async def _metrics(self, _: web.Request) -> web.Response:
        # A few hundred series: rendered in a millisecond or two, once per scrape.
        response = web.Response(body=metrics.exposition())
        response.headers["Content-Type"] = metrics.CONTENT_TYPE
        return response
