"""The admin listener's aiohttp application: routes, middleware, the OpenAPI document."""

from __future__ import annotations

import msgspec
from aiohttp import web

from acmegate.common.http_observation import observe_requests
from acmegate.common.server_header import hide_server_version
from acmegate.frontend.admin import dashboard
from acmegate.frontend.admin.auth import LOGIN_PATH, auth_middleware
from acmegate.frontend.admin.context import ADMIN, Admin
from acmegate.frontend.admin.middleware import admin_middleware
from acmegate.frontend.admin.openapi import API, openapi_document
from acmegate.frontend.admin.params import QUERY_NAMES, query_middleware, query_names
from acmegate.frontend.admin.routes import (
    cas,
    certificates,
    eab_keys,
    enrollments,
    lookup_policies,
    platforms,
    signal_sources,
    templates,
)

OPENAPI_PATH = f"{API}/openapi.json"
OPENAPI = web.AppKey("openapi", bytes)


async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


def create_admin_app(admin: Admin) -> web.Application:
    """The admin API under ``/api/v1``, the dashboard at ``/dashboard``, login at ``/login``."""
    # Error rendering outermost (after the access log), so a refused login is a problem
    # document too.
    observe = observe_requests("admin", service="frontend")
    app = web.Application(
        middlewares=[observe, admin_middleware, auth_middleware, query_middleware],
        client_max_size=64 * 1024,
    )
    document = openapi_document(admin.frontend.config)
    app[ADMIN] = admin
    hide_server_version(app)
    app[OPENAPI] = msgspec.json.encode(document)
    app[QUERY_NAMES] = query_names(document)
    app[dashboard.PAGES] = dashboard.Pages.load()
    routes = app.router
    routes.add_get(OPENAPI_PATH, openapi_json)
    routes.add_get(f"{API}/certificate-authorities", cas.list_cas)
    routes.add_get(f"{API}/templates", templates.list_templates)
    routes.add_get(f"{API}/platforms", platforms.list_platforms)
    routes.add_get(f"{API}/platforms/{{name}}/profile", platforms.download_profile)
    routes.add_post(f"{API}/platforms/{{name}}/token/rotate", platforms.rotate_platform_token)
    routes.add_get(f"{API}/signal-sources", signal_sources.list_sources)
    routes.add_post(f"{API}/signal-sources/{{name}}/validate", signal_sources.validate_source)
    routes.add_get(f"{API}/lookup-policies", lookup_policies.list_lookups)
    routes.add_post(f"{API}/lookup-policies/{{name}}/validate", lookup_policies.validate_lookup)
    routes.add_get(f"{API}/certificates", certificates.list_certificates)
    routes.add_get(f"{API}/certificates/{{serial}}", certificates.show_certificate)
    routes.add_post(f"{API}/certificates/{{serial}}/revoke", certificates.revoke_certificate)
    routes.add_get(f"{API}/devices/{{serial}}/certificates", certificates.device_history)
    routes.add_get(f"{API}/enrollments", enrollments.list_enrollments)
    routes.add_get(f"{API}/eab-keys", eab_keys.list_eab_keys)
    routes.add_post(f"{API}/eab-keys", eab_keys.create_eab_key)
    routes.add_post(f"{API}/eab-keys/{{key_id}}/revoke", eab_keys.revoke_eab_key)
    routes.add_get("/", dashboard.home)
    routes.add_get(dashboard.DASHBOARD_PATH, dashboard.dashboard)
    routes.add_get(f"{dashboard.DASHBOARD_PATH}/device", dashboard.device_page)
    routes.add_get(LOGIN_PATH, dashboard.login_form)
    routes.add_post(LOGIN_PATH, dashboard.login)
    routes.add_post("/logout", dashboard.logout)
    return app
