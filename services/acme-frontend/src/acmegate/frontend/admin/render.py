"""JSON responses of the admin API (msgspec: Structs, datetimes as RFC 3339)."""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

_encode = msgspec.json.Encoder().encode


def json_response(data: Any, *, status: int = 200) -> web.Response:
    return web.Response(body=_encode(data), status=status, content_type="application/json")
