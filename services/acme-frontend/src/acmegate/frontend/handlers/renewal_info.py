"""GET renewalInfo/{certID} (RFC 9773 §4): unauthenticated, like the directory."""

from __future__ import annotations

from aiohttp import web

from acmegate.frontend import renewal_info
from acmegate.frontend.context import FRONTEND
from acmegate.frontend.linker import resource_id
from acmegate.frontend.render import json_response, timestamp


async def renewal_info_of(request: web.Request) -> web.Response:
    frontend = request.app[FRONTEND]
    window = await renewal_info.renewal_info(
        frontend.pool, resource_id(request), frontend.clock.now()
    )
    return json_response(
        {"suggestedWindow": {"start": timestamp(window.start), "end": timestamp(window.end)}},
        retry_after=renewal_info.RETRY_AFTER,
    )
