"""GET renewalInfo/{certID} (RFC 9773 §4.1): unauthenticated, like the directory."""

from __future__ import annotations

from aiohttp import web

from acmegate.common.errors import not_found
from acmegate.frontend import retry_after
from acmegate.frontend.context import FRONTEND
from acmegate.frontend.db import revocations as revocation_db
from acmegate.frontend.linker import resource_id
from acmegate.frontend.render import json_response
from acmegate.frontend.renewal_info import (
    issued_under,
    leaf_of,
    parse_cert_id,
    rfc3339,
    suggested_window,
)


async def renewal_info(request: web.Request) -> web.Response:
    frontend = request.app[FRONTEND]
    cert_id = parse_cert_id(resource_id(request))
    found = await revocation_db.find_by_serial(frontend.pool, cert_id.serial_hex)
    leaf = leaf_of(found.chain_pem) if found is not None else None
    if found is None or leaf is None or not issued_under(leaf, cert_id):
        raise not_found("no certificate with this certID was issued here")
    start, end = suggested_window(leaf, found.revoked_at)
    return json_response(
        {"suggestedWindow": {"start": rfc3339(start), "end": rfc3339(end)}},
        retry_after=retry_after.RENEWAL_INFO,
    )
