"""The aiohttp application of the ACME edge: routes and middleware (aiohttp's app factory)."""

from __future__ import annotations

from aiohttp import web

from acmegate.frontend.context import FRONTEND, Frontend
from acmegate.frontend.handlers import account, authz, certificate, directory, order, revoke
from acmegate.frontend.linker import Paths
from acmegate.frontend.middleware import acme_middleware


def create_app(frontend: Frontend) -> web.Application:
    app = web.Application(
        middlewares=[acme_middleware],
        client_max_size=frontend.config.server.max_body_bytes,
    )
    app[FRONTEND] = frontend
    app.router.add_get(Paths.DIRECTORY, directory.directory, allow_head=True)
    app.router.add_route("HEAD", Paths.NEW_NONCE, directory.new_nonce)
    app.router.add_get(Paths.NEW_NONCE, directory.new_nonce, allow_head=False)
    app.router.add_post(Paths.NEW_ACCOUNT, account.new_account)
    app.router.add_post(Paths.KEY_CHANGE, account.key_change)
    app.router.add_post(Paths.ACCOUNT, account.account)
    app.router.add_post(Paths.ACCOUNT_ORDERS, order.account_orders)
    app.router.add_post(Paths.NEW_ORDER, order.new_order)
    app.router.add_post(Paths.ORDER, order.order)
    app.router.add_post(Paths.FINALIZE, order.finalize)
    app.router.add_post(Paths.AUTHZ, authz.authorization)
    app.router.add_post(Paths.CHALLENGE, authz.challenge)
    app.router.add_post(Paths.CERTIFICATE, certificate.certificate)
    app.router.add_post(Paths.REVOKE_CERT, revoke.revoke_cert)
    return app
