"""``/api/v1/certificate-authorities``: the CAs the signer has loaded."""

from __future__ import annotations

from aiohttp import web

from acmegate.common.admin_messages import AdminCaList, AdminListCas
from acmegate.common.bus import RpcQueue
from acmegate.frontend.admin.context import ADMIN
from acmegate.frontend.admin.render import json_response
from acmegate.frontend.admin.rpc import ask, correlation_id


async def list_cas(request: web.Request) -> web.Response:
    """Name, subject, chain, validity, key algorithm and key storage of each CA."""
    reply = await ask(
        request.app[ADMIN],
        RpcQueue.SIGNER,
        AdminListCas(correlation_id=correlation_id()),
        AdminCaList,
    )
    return json_response({"certificate_authorities": reply.authorities})
