"""revokeCert (RFC 8555 §7.6): signed by the account key (``kid``) or the certificate key
(``jwk``); 200 with an empty body once the revocation is handed to the signer."""

from __future__ import annotations

from aiohttp import web

from acmegate.frontend import revocation
from acmegate.frontend.auth import KeyMode, authenticate
from acmegate.frontend.context import FRONTEND


async def revoke_cert(request: web.Request) -> web.Response:
    frontend = request.app[FRONTEND]
    signed = await authenticate(request, frontend, KeyMode.EITHER)
    await revocation.revoke(frontend, signed)
    return web.Response(status=200)
