"""The fake Jamf Pro server: state, the aiohttp application, start/stop and run-time controls.

:class:`FakeJamf` is the handle a test holds: its :attr:`~FakeJamf.inventory` (edit it between
requests: remove a device, unmanage one), :attr:`~FakeJamf.faults` (5xx, slow answers, paging
gaps), :attr:`~FakeJamf.tokens` (the token log, :meth:`~TokenStore.expire_all`),
:attr:`~FakeJamf.profiles` (Classic API configuration profiles) and :attr:`~FakeJamf.stats`
(requests seen, the most concurrent requests and connections). The
same controls are served under ``/_fake/`` for a server started with ``acmegate fake-jamf``.
"""

from __future__ import annotations

import asyncio
import secrets
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from acmegate.testkit.fakejamf.errors import api_error
from acmegate.testkit.fakejamf.faults import CONNECTION_GUIDANCE, Faults, RequestRecord, Stats
from acmegate.testkit.fakejamf.inventory import Computer, Inventory, MobileDevice
from acmegate.testkit.fakejamf.profile_store import ProfileStore
from acmegate.testkit.fakejamf.tokens import TokenStore

CONTROL_PREFIX = "/_fake/"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeJamf:
    """One fake Jamf Pro server over an :class:`Inventory`.

    ``clock`` (wall-clock seconds) decides token expiry; tests may pass their own.
    """

    def __init__(self, inventory: Inventory, *, clock: Callable[[], float] = time.time) -> None:
        self.inventory = inventory
        self.tokens = TokenStore(clock=clock)
        self.faults = Faults()
        self.stats = Stats()
        # Classic API configuration profiles (``acmegate platform publish``).
        self.profiles = ProfileStore()
        self._runner: web.AppRunner | None = None
        self.url = ""

    # --- the application ----------------------------------------------------------------

    def app(self) -> web.Application:
        """The aiohttp application (routes of Jamf Pro and the ``/_fake/`` controls)."""
        from acmegate.testkit.fakejamf import (
            auth_routes,
            classic_profiles,
            control_routes,
            inventory_routes,
        )

        app = web.Application(middlewares=[self._observe])
        app[FAKE_JAMF] = self
        auth_routes.add(app.router)
        inventory_routes.add(app.router)
        classic_profiles.add(app.router)
        control_routes.add(app.router)
        return app

    @web.middleware
    async def _observe(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(CONTROL_PREFIX):
            return await handler(request)
        stats = self.stats
        stats.in_flight += 1
        server = self._runner.server if self._runner is not None else None
        connections = len(server.connections) if server is not None else 0
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        stats.max_connections = max(stats.max_connections, connections)
        if stats.in_flight > CONNECTION_GUIDANCE or connections > CONNECTION_GUIDANCE:
            stats.over_limit += 1
        status = 500
        try:
            if self.faults.delay > 0:
                await asyncio.sleep(self.faults.delay)
            if self.faults.should_fail():
                response: web.StreamResponse = api_error(self.faults.error_status)
            else:
                response = await handler(request)
            status = response.status
            if self.faults.sticky_cookie:
                response.set_cookie("jpro-ingress", secrets.token_hex(8))
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            stats.in_flight -= 1
            scheme = request.headers.get("Authorization", "").split(" ", 1)[0] or None
            stats.requests.append(
                RequestRecord(
                    request.method,
                    request.path,
                    request.query_string,
                    status,
                    request.headers.get("User-Agent"),
                    scheme,
                )
            )

    # --- lifecycle ------------------------------------------------------------------------

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, *, ssl_context: ssl.SSLContext | None = None
    ) -> str:
        """Listen on ``host:port`` (0: a free port), over TLS with ``ssl_context``; returns the
        base URL."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=ssl_context)
        await site.start()
        bound = self._runner.addresses[0]
        scheme = "https" if ssl_context is not None else "http"
        self.url = f"{scheme}://{host}:{bound[1]}"
        return self.url

    async def stop(self) -> None:
        """Close every connection and stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- run-time controls ------------------------------------------------------------------

    def find(self, serial_number: str) -> Computer | MobileDevice | None:
        """The computer or mobile device with that serial (case-insensitive)."""
        folded = serial_number.casefold()
        devices: list[Any] = [*self.inventory.computers, *self.inventory.mobile_devices]
        return next((d for d in devices if d.serial_number.casefold() == folded), None)

    def remove_device(self, serial_number: str) -> bool:
        """Delete the device from Jamf (it "leaves"); ``False`` if there was none."""
        device = self.find(serial_number)
        if device is None:
            return False
        if isinstance(device, Computer):
            self.inventory.computers.remove(device)
        else:
            self.inventory.mobile_devices.remove(device)
        return True

    def set_managed(self, serial_number: str, managed: bool) -> bool:
        """Unmanage (or manage again) a device; its record stays (docs/jamf.md §8.5)."""
        device = self.find(serial_number)
        if device is None:
            return False
        device.managed = managed
        return True

    def set_groups(self, serial_number: str, groups: list[str]) -> bool:
        """Replace a device's group memberships."""
        device = self.find(serial_number)
        if device is None:
            return False
        device.groups = list(groups)
        return True

    def expire_tokens(self) -> int:
        """Every live token expires now (the "token expiry mid-run" fault)."""
        return self.tokens.expire_all()

    def reset_stats(self) -> None:
        """Forget the requests seen and the concurrency peaks."""
        self.stats = Stats(in_flight=self.stats.in_flight)


FAKE_JAMF = web.AppKey("fake_jamf", FakeJamf)
