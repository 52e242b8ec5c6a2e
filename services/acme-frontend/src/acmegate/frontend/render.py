"""JSON views of ACME objects (RFC 8555 §7.1.2–7.1.6) and the responses that carry them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from aiohttp import web

from acmegate.frontend.db.accounts import Account
from acmegate.frontend.db.orders import Authorization, Challenge, Order
from acmegate.frontend.linker import Linker
from acmegate.frontend.problems import problem_document
from acmegate.frontend.retry_after import header as retry_after_header
from acmegate.frontend.status import (
    OrderStatus,
    presented_authz_status,
    presented_order_status,
)

_encoder = msgspec.json.Encoder()


def timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with a Z, as RFC 8555 §7.1 asks."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def account_view(account: Account, linker: Linker) -> dict[str, Any]:
    return {
        "status": account.status,
        "contact": account.contact,
        "termsOfServiceAgreed": account.terms_agreed,
        "orders": linker.account_orders(account.id),
    }


def order_view(order: Order, linker: Linker, now: datetime) -> dict[str, Any]:
    status = presented_order_status(order.status, order.expires, now)
    view: dict[str, Any] = {
        "status": status,
        "expires": timestamp(order.expires),
        "identifiers": [{"type": i.type, "value": i.value} for i in order.identifiers],
        "authorizations": [linker.authz(authz_id) for authz_id in order.authz_ids],
        "finalize": linker.finalize(order.id),
    }
    if order.error is not None:
        view["error"] = problem_document(order.error)
    elif status is OrderStatus.INVALID and order.status != OrderStatus.INVALID:
        view["error"] = {
            "type": "urn:ietf:params:acme:error:malformed",
            "detail": "order expired",
            "status": 400,
        }
    if order.certificate_id and status is OrderStatus.VALID:
        view["certificate"] = linker.certificate(order.certificate_id)
    return view


def challenge_view(challenge: Challenge, linker: Linker) -> dict[str, Any]:
    view: dict[str, Any] = {
        "type": challenge.type,
        "url": linker.challenge(challenge.id),
        "status": challenge.status,
        "token": challenge.token,
    }
    if challenge.validated is not None:
        view["validated"] = timestamp(challenge.validated)
    if challenge.error is not None:
        view["error"] = problem_document(challenge.error)
    return view


def authz_view(authz: Authorization, linker: Linker, now: datetime) -> dict[str, Any]:
    view: dict[str, Any] = {
        "status": presented_authz_status(authz.status, authz.expires, now),
        "expires": timestamp(authz.expires),
        "identifier": {"type": authz.identifier.type, "value": authz.identifier.value},
        "challenges": [challenge_view(c, linker) for c in authz.challenges],
    }
    if authz.wildcard:
        view["wildcard"] = True  # RFC 8555 §7.1.4
    return view


def json_response(
    body: Any,
    *,
    status: int = 200,
    location: str | None = None,
    up: str | None = None,
    retry_after: int | None = None,
) -> web.Response:
    response = web.Response(
        body=_encoder.encode(body), status=status, content_type="application/json"
    )
    if location is not None:
        response.headers["Location"] = location
    if up is not None:
        response.headers.add("Link", f'<{up}>;rel="up"')
    if retry_after is not None:
        response.headers["Retry-After"] = retry_after_header(retry_after)
    return response
