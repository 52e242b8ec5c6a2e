"""GET directory (RFC 8555 §7.1.1) and newNonce (§7.2)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from acmegate.frontend.context import FRONTEND, Frontend
from acmegate.frontend.render import json_response


def _directory(frontend: Frontend, *, new_account: str, eab_required: bool) -> web.Response:
    linker = frontend.linker
    meta: dict[str, Any] = {"externalAccountRequired": eab_required}
    if frontend.config.acme.terms_of_service:
        meta["termsOfService"] = frontend.config.acme.terms_of_service
    if frontend.config.acme.website:
        meta["website"] = frontend.config.acme.website
    return json_response(
        {
            "newNonce": linker.new_nonce,
            "newAccount": new_account,
            "newOrder": linker.new_order,
            "revokeCert": linker.revoke_cert,
            "keyChange": linker.key_change,
            "renewalInfo": linker.renewal_info_base,
            "meta": meta,
        }
    )


async def directory(request: web.Request) -> web.Response:
    """The directory devices use (their profile's DirectoryURL): never requires an EAB,
    which Apple's ACME client cannot send."""
    frontend = request.app[FRONTEND]
    return _directory(frontend, new_account=frontend.linker.new_account, eab_required=False)


async def server_directory(request: web.Request) -> web.Response:
    """The directory for server-certificate clients (docs/server-certificates.md)."""
    frontend = request.app[FRONTEND]
    return _directory(
        frontend,
        new_account=frontend.linker.server_new_account,
        eab_required=frontend.config.acme.external_account_required,
    )


async def new_nonce(request: web.Request) -> web.Response:
    # The middleware adds Replay-Nonce and Cache-Control: no-store to every response.
    return web.Response(status=200 if request.method == "HEAD" else 204)
