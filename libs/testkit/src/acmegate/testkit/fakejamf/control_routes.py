"""Run-time controls of a fake started by ``acmegate fake-jamf`` (not part of Jamf's API).

- ``GET /_fake/stats``: concurrency peaks, request count, the token log;
- ``POST /_fake/faults``: set faults, e.g. ``{"fail_next": 3}``, ``{"delay": 2.5}``,
  ``{"error_rate": 0.2, "error_status": 502}``;
- ``POST /_fake/expire-tokens``: every live token expires now;
- ``DELETE /_fake/devices/{serial}``: the device leaves Jamf;
- ``POST /_fake/devices/{serial}/managed`` with ``{"managed": false}``: unmanage it;
- ``POST /_fake/reset``: clear faults and statistics.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web

from acmegate.testkit.fakejamf.faults import Faults
from acmegate.testkit.fakejamf.server import FAKE_JAMF


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return body


async def stats(request: web.Request) -> web.Response:
    fake = request.app[FAKE_JAMF]
    faults = {
        f.name: getattr(fake.faults, f.name) for f in dataclasses.fields(Faults) if f.name != "rng"
    }
    log = [dataclasses.asdict(event) for event in fake.tokens.log]
    return web.json_response({**fake.stats.as_dict(), "faults": faults, "token_log": log})


async def set_faults(request: web.Request) -> web.Response:
    fake = request.app[FAKE_JAMF]
    try:
        fake.faults.update(await _json(request))
    except KeyError as exc:
        raise web.HTTPBadRequest(text=f"unknown fault {exc}") from exc
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    return await stats(request)


async def expire_tokens(request: web.Request) -> web.Response:
    return web.json_response({"expired": request.app[FAKE_JAMF].expire_tokens()})


async def remove_device(request: web.Request) -> web.Response:
    if not request.app[FAKE_JAMF].remove_device(request.match_info["serial"]):
        raise web.HTTPNotFound(text="no such device")
    return web.Response(status=204)


async def set_managed(request: web.Request) -> web.Response:
    managed = (await _json(request)).get("managed")
    if not isinstance(managed, bool):
        raise web.HTTPBadRequest(text='expected {"managed": true|false}')
    if not request.app[FAKE_JAMF].set_managed(request.match_info["serial"], managed):
        raise web.HTTPNotFound(text="no such device")
    return web.Response(status=204)


async def reset(request: web.Request) -> web.Response:
    fake = request.app[FAKE_JAMF]
    fake.faults = Faults()
    fake.reset_stats()
    return web.Response(status=204)


def add(router: web.UrlDispatcher) -> None:
    router.add_get("/_fake/stats", stats)
    router.add_post("/_fake/faults", set_faults)
    router.add_post("/_fake/expire-tokens", expire_tokens)
    router.add_delete("/_fake/devices/{serial}", remove_device)
    router.add_post("/_fake/devices/{serial}/managed", set_managed)
    router.add_post("/_fake/reset", reset)
