"""newAccount, account URL, keyChange (RFC 8555 §7.3)."""

from __future__ import annotations

from aiohttp import web

from acmegate.frontend import accounts
from acmegate.frontend.auth import KeyMode, authenticate, authenticate_new_account
from acmegate.frontend.context import FRONTEND
from acmegate.frontend.linker import resource_id
from acmegate.frontend.render import account_view, json_response


async def new_account(request: web.Request) -> web.Response:
    frontend = request.app[FRONTEND]
    signed = await authenticate_new_account(request, frontend)
    client = frontend.proxies.client_subject(request)
    account, created = await accounts.register(frontend, signed, client)
    return json_response(
        account_view(account, frontend.linker),
        status=201 if created else 200,
        location=frontend.linker.account(account.id),
    )


async def server_new_account(request: web.Request) -> web.Response:
    """newAccount of the server directory: an EAB is required if so configured (§7.3.4)."""
    frontend = request.app[FRONTEND]
    signed = await authenticate_new_account(request, frontend)
    client = frontend.proxies.client_subject(request)
    account, created = await accounts.register(
        frontend, signed, client, eab_required=frontend.config.acme.external_account_required
    )
    return json_response(
        account_view(account, frontend.linker),
        status=201 if created else 200,
        location=frontend.linker.account(account.id),
    )


async def account(request: web.Request) -> web.Response:
    frontend = request.app[FRONTEND]
    signed = await authenticate(request, frontend, KeyMode.KID)
    updated = await accounts.update(frontend, signed, resource_id(request))
    return json_response(account_view(updated, frontend.linker))


async def key_change(request: web.Request) -> web.Response:
    frontend = request.app[FRONTEND]
    signed = await authenticate(request, frontend, KeyMode.KID)
    changed = await accounts.change_key(frontend, signed)
    return json_response(
        account_view(changed, frontend.linker), location=frontend.linker.account(changed.id)
    )
