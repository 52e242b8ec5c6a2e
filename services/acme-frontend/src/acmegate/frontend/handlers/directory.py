"""GET directory (RFC 8555 §7.1.1) and newNonce (§7.2)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from acmegate.frontend.context import FRONTEND
from acmegate.frontend.render import json_response


async def directory(request: web.Request) -> web.Response:
    frontend = request.app[FRONTEND]
    linker = frontend.linker
    meta: dict[str, Any] = {"externalAccountRequired": False}
    if frontend.config.acme.terms_of_service:
        meta["termsOfService"] = frontend.config.acme.terms_of_service
    if frontend.config.acme.website:
        meta["website"] = frontend.config.acme.website
    return json_response(
        {
            "newNonce": linker.new_nonce,
            "newAccount": linker.new_account,
            "newOrder": linker.new_order,
            "revokeCert": linker.revoke_cert,
            "keyChange": linker.key_change,
            # RFC 9773 §3: renewal information (ARI).
            "renewalInfo": linker.renewal_info,
            "meta": meta,
        }
    )


async def new_nonce(request: web.Request) -> web.Response:
    # The middleware adds Replay-Nonce and Cache-Control: no-store to every response.
    return web.Response(status=200 if request.method == "HEAD" else 204)
