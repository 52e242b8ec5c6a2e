"""The aiohttp application of the ACME edge: routes and middleware (aiohttp's app factory)."""

from __future__ import annotations

from aiohttp import web

from acmegate.common.config import seconds
from acmegate.common.http_observation import observe_requests
from acmegate.common.server_header import hide_server_version
from acmegate.frontend import enrollment_trace
from acmegate.frontend.context import FRONTEND, Frontend
from acmegate.frontend.handlers import (
    account,
    authz,
    certificate,
    directory,
    order,
    renewal_info,
    revoke,
)
from acmegate.frontend.linker import Paths
from acmegate.frontend.middleware import ALWAYS_HTTPS, HSTS, acme_middleware


def create_app(frontend: Frontend) -> web.Application:
    # Outermost: access log, metrics and the server span see the final response.
    app = web.Application(
        middlewares=[
            observe_requests("acme", service="frontend", trace_seed=enrollment_trace.order_of),
            acme_middleware,
        ],
        client_max_size=frontend.config.server.max_body_bytes,
    )
    app[FRONTEND] = frontend
    server = frontend.config.server
    hsts_max_age = seconds(server.hsts_max_age)
    if hsts_max_age:
        app[HSTS] = f"max-age={hsts_max_age}"
    app[ALWAYS_HTTPS] = server.base_url.startswith("https:")
    hide_server_version(app)
    app.router.add_get(Paths.DIRECTORY.pattern, directory.directory, allow_head=True)
    app.router.add_route("HEAD", Paths.NEW_NONCE.pattern, directory.new_nonce)
    app.router.add_get(Paths.NEW_NONCE.pattern, directory.new_nonce, allow_head=False)
    app.router.add_get(Paths.SERVER_DIRECTORY.pattern, directory.server_directory, allow_head=True)
    app.router.add_post(Paths.NEW_ACCOUNT.pattern, account.new_account)
    app.router.add_post(Paths.SERVER_NEW_ACCOUNT.pattern, account.server_new_account)
    app.router.add_post(Paths.KEY_CHANGE.pattern, account.key_change)
    app.router.add_post(Paths.ACCOUNT.pattern, account.account)
    app.router.add_post(Paths.ACCOUNT_ORDERS.pattern, order.account_orders)
    app.router.add_post(Paths.NEW_ORDER.pattern, order.new_order)
    app.router.add_post(Paths.ORDER.pattern, order.order)
    app.router.add_post(Paths.FINALIZE.pattern, order.finalize)
    app.router.add_post(Paths.AUTHZ.pattern, authz.authorization)
    app.router.add_post(Paths.CHALLENGE.pattern, authz.challenge)
    app.router.add_post(Paths.CERTIFICATE.pattern, certificate.certificate)
    app.router.add_post(Paths.REVOKE_CERT.pattern, revoke.revoke_cert)
    app.router.add_get(Paths.RENEWAL_INFO.pattern, renewal_info.renewal_info_of, allow_head=True)
    return app
