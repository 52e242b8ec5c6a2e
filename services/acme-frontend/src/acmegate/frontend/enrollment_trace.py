"""One enrollment is one trace even when the ACME client sends no ``traceparent`` (#11).

The trace context of every request about an order — newOrder, its authorization and challenge,
the order and finalize, its certificate — is derived from the order's id
(:func:`acmegate.common.tracing.enrollment_trace_headers`), and the messages those requests
publish carry it on to attestation, policy, the signer and the results consumer. Requests made
before an order exists (directory, nonce, account) have traces of their own. A client that
sends a ``traceparent`` is joined instead, as before.

The order id of an order or finalize request is in its URL; newOrder plans the id of the order
it will create; an authorization, challenge or certificate costs one indexed lookup — only
with tracing on and no ``traceparent`` from the client.
"""

from __future__ import annotations

import asyncpg
from aiohttp import web

from acmegate.common.ids import new_id
from acmegate.frontend.context import FRONTEND
from acmegate.frontend.linker import Paths, resource_id

# The id newOrder gives the order it creates, planned before its server span starts.
PLANNED_ORDER_ID = web.RequestKey("planned_order_id", str)

_IN_URL = frozenset({Paths.ORDER.pattern, Paths.FINALIZE.pattern})
_LOOKUP = {
    Paths.AUTHZ.pattern: "SELECT order_id FROM acme.authorizations WHERE id = $1",
    Paths.CHALLENGE.pattern: """SELECT a.order_id FROM acme.challenges c
        JOIN acme.authorizations a ON a.id = c.authz_id WHERE c.id = $1""",
    Paths.CERTIFICATE.pattern: "SELECT order_id FROM acme.certificates WHERE id = $1",
}


async def order_of(request: web.Request) -> str | None:
    """The id of the order ``request`` is about (the seed of its trace), if any."""
    resource = request.match_info.route.resource
    pattern = resource.canonical if resource is not None else None
    if pattern == Paths.NEW_ORDER.pattern:
        planned = request[PLANNED_ORDER_ID] = new_id()
        return planned
    if pattern in _IN_URL:
        return resource_id(request)
    query = _LOOKUP.get(pattern) if pattern is not None else None
    if query is None:
        return None
    try:
        found = await request.app[FRONTEND].pool.fetchval(query, resource_id(request))
    except (asyncpg.PostgresError, OSError, TimeoutError):
        # Tracing never fails a request: the handler meets the outage and answers it.
        return None
    return found if isinstance(found, str) else None
