"""A tiny HTTP listener for orchestrators: ``/healthz`` (the process answers) and ``/readyz``
(its database and broker connections work), as Kubernetes probes expect."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from aiohttp import web

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

    async def start(self) -> None:
        app = hide_server_version(web.Application())
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
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
