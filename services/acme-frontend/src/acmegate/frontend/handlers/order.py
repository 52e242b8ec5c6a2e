"""newOrder, order, finalize, the account's order list (RFC 8555 §7.1.2.1, §7.4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web

from acmegate.common.errors import malformed, unauthorized
from acmegate.frontend import enrollment_trace, ordering, retry_after
from acmegate.frontend.auth import KeyMode, authenticate, authenticate_deferred
from acmegate.frontend.context import FRONTEND
from acmegate.frontend.db import orders as order_db
from acmegate.frontend.linker import resource_id
from acmegate.frontend.problems import problem_response
from acmegate.frontend.render import json_response, order_view
from acmegate.frontend.status import OrderStatus

ORDERS_PAGE = 100


def _order_response(request: web.Request, order: order_db.Order, status: int = 200) -> web.Response:
    frontend = request.app[FRONTEND]
    view = order_view(order, frontend.linker, frontend.clock.now())
    return json_response(
        view,
        status=status,
        location=frontend.linker.order(order.id),
        retry_after=retry_after.PROCESSING if view["status"] == OrderStatus.PROCESSING else None,
    )


async def new_order(request: web.Request) -> web.Response:
    frontend = request.app[FRONTEND]
    signed = await authenticate_deferred(request, frontend)
    order = await ordering.new_order(
        frontend, signed, order_id=request.get(enrollment_trace.PLANNED_ORDER_ID)
    )
    return _order_response(request, order, status=201)


async def order(request: web.Request) -> web.Response:
    frontend = request.app[FRONTEND]
    signed = await authenticate_deferred(request, frontend)
    found = await ordering.own_order(frontend, signed, resource_id(request))
    if not signed.is_post_as_get:
        # RFC 8555 §7.1.3 defines no update of an order: only POST-as-GET (§6.3) reads it.
        raise malformed("an order is read with POST-as-GET (empty payload); it has no updates")
    return _order_response(request, found)


async def finalize(request: web.Request) -> web.Response:
    frontend = request.app[FRONTEND]
    signed = await authenticate_deferred(request, frontend)
    outcome = await ordering.finalize(frontend, signed, resource_id(request))
    if outcome.problem is not None:
        response = problem_response(outcome.problem)
        response.headers["Location"] = frontend.linker.order(outcome.order.id)
        return response
    return _order_response(request, outcome.order)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


# The largest cursor a datetime can hold (year 9999), 18 digits of microseconds.
_MAX_CURSOR = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // _MICROSECOND
_MAX_CURSOR_DIGITS = len(str(_MAX_CURSOR))


def _cursor(value: str | None) -> datetime | None:
    """The page cursor: microseconds since the epoch of the last order of the page before."""
    if value is None:
        return None
    # ASCII digits only: str.isdigit() also accepts "²" and "１", which int() then refuses or
    # reads; the length check keeps int() away from 5,000-digit strings.
    if (
        not (value.isascii() and value.isdigit())
        or len(value) > _MAX_CURSOR_DIGITS
        or int(value) > _MAX_CURSOR
    ):
        raise malformed("'before' must be the cursor from a Link rel=\"next\"")
    return _EPOCH + int(value) * _MICROSECOND


async def account_orders(request: web.Request) -> web.Response:
    frontend = request.app[FRONTEND]
    signed = await authenticate(request, frontend, KeyMode.KID)
    account = signed.require_account()
    if account.id != resource_id(request):
        raise unauthorized("the JWS 'kid' is not this account")
    if not signed.is_post_as_get:
        raise malformed("the orders list is read with POST-as-GET (empty payload)")
    before = _cursor(request.query.get("before"))
    page = await order_db.list_order_ids(
        frontend.pool, account.id, before=before, limit=ORDERS_PAGE
    )
    response = json_response({"orders": [frontend.linker.order(oid) for oid, _ in page]})
    if len(page) == ORDERS_PAGE:
        # RFC 8555 §7.1.2.1: further pages through Link rel="next".
        cursor = (page[-1][1] - _EPOCH) // _MICROSECOND
        next_url = frontend.linker.account_orders(account.id) + f"?before={cursor}"
        response.headers.add("Link", f'<{next_url}>;rel="next"')
    return response
