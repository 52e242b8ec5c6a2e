"""Certificate download (RFC 8555 §7.4.2): POST-as-GET, ``application/pem-certificate-chain``."""

from __future__ import annotations

from aiohttp import web

from acmegate.common.errors import malformed, not_found, unauthorized
from acmegate.frontend.auth import authenticate_deferred
from acmegate.frontend.context import FRONTEND
from acmegate.frontend.db import orders as order_db
from acmegate.frontend.linker import resource_id

PEM_CHAIN = "application/pem-certificate-chain"


async def certificate(request: web.Request) -> web.Response:
    frontend = request.app[FRONTEND]
    signed = await authenticate_deferred(request, frontend)
    found = await order_db.get_certificate(frontend.pool, resource_id(request), signed.gate)
    if not signed.is_post_as_get:
        raise malformed("certificates are fetched with POST-as-GET (empty payload)")
    if found is None:
        raise not_found("no such certificate")
    if found.account_id != signed.require_account().id:
        raise unauthorized("this certificate belongs to another account")
    response = web.Response(text=found.chain_pem)
    response.content_type = PEM_CHAIN
    response.headers.add("Link", f'<{frontend.linker.order(found.order_id)}>;rel="up"')
    return response
