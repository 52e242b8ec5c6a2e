"""``/api/v1/eab-keys``: External Account Binding keys (RFC 8555 §7.3.4) for the ACME clients
of servers: list, create (the HMAC key is shown once), revoke."""

from __future__ import annotations

from typing import Literal

from aiohttp import web

from acmegate.common.errors import malformed, not_found
from acmegate.common.ids import b64url
from acmegate.frontend import eab
from acmegate.frontend.admin.context import ADMIN
from acmegate.frontend.admin.params import clean_text, json_body, path_text
from acmegate.frontend.admin.render import json_response
from acmegate.frontend.admin.views import EabKey, EabKeyCreated, EabKeyRequest, EabKeyRevocation
from acmegate.frontend.db import eab as eab_db


def eab_key_json(key: eab_db.EabKey) -> EabKey:
    status: Literal["unused", "bound", "revoked"] = (
        "revoked" if key.revoked_at else "bound" if key.account_id else "unused"
    )
    return EabKey(
        key_id=key.id,
        description=key.description,
        status=status,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
        account_id=key.account_id,
        bound_at=key.bound_at,
    )


async def list_eab_keys(request: web.Request) -> web.Response:
    frontend = request.app[ADMIN].frontend
    keys = await eab_db.list_keys(frontend.pool)
    return json_response({"eab_keys": [eab_key_json(k) for k in keys]})


async def create_eab_key(request: web.Request) -> web.Response:
    """A new key id and its HMAC key; only this answer ever shows the HMAC key."""
    frontend = request.app[ADMIN].frontend
    body = await json_body(request, EabKeyRequest, required=False)
    if len(body.description) > 200:
        raise malformed("$.description: at most 200 characters")
    description = clean_text("$.description", body.description) if body.description else ""
    key = await eab_db.create(frontend.pool, eab.new_key_id(), description, frontend.clock.now())
    hmac_key = b64url(frontend.eab.hmac_key(key.id))
    return json_response(EabKeyCreated(key.id, hmac_key, key.description, key.created_at))


async def revoke_eab_key(request: web.Request) -> web.Response:
    """Revoke the key (idempotent); an account it already bound keeps working."""
    frontend = request.app[ADMIN].frontend
    key_id = path_text(request, "key_id")
    found = await eab_db.revoke(frontend.pool, key_id, frontend.clock.now())
    if found is None:
        raise not_found(f"no EAB key {key_id!r}")
    key, revoked_now = found
    return json_response(EabKeyRevocation(eab_key_json(key), revoked_now))
