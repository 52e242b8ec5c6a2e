"""Authorizations and challenges (RFC 8555 §7.5)."""

from __future__ import annotations

from aiohttp import web

from acmegate.frontend import challenges, retry_after
from acmegate.frontend.auth import authenticate_deferred
from acmegate.frontend.context import FRONTEND
from acmegate.frontend.linker import resource_id
from acmegate.frontend.render import authz_view, challenge_view, json_response
from acmegate.frontend.status import ChallengeStatus


async def authorization(request: web.Request) -> web.Response:
    frontend = request.app[FRONTEND]
    signed = await authenticate_deferred(request, frontend)
    authz = await challenges.read_or_deactivate(frontend, signed, resource_id(request))
    view = authz_view(authz, frontend.linker, frontend.clock.now())
    pending = any(c.status == ChallengeStatus.PROCESSING for c in authz.challenges)
    return json_response(view, retry_after=retry_after.PROCESSING if pending else None)


async def challenge(request: web.Request) -> web.Response:
    frontend = request.app[FRONTEND]
    signed = await authenticate_deferred(request, frontend)
    authz, found = await challenges.respond(frontend, signed, resource_id(request))
    return json_response(
        challenge_view(found, frontend.linker),
        up=frontend.linker.authz(authz.id),
        retry_after=retry_after.PROCESSING if found.status == ChallengeStatus.PROCESSING else None,
    )
