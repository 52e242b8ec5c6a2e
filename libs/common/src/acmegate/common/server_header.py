"""The ``Server`` header of every acmegate HTTP listener (ACME, admin, PKI, RADIUS, health):
the product name without any version, so a scanner learns nothing about the Python or aiohttp
release to look up vulnerabilities for (RFC 9110 §10.2.4 advises against needless detail).

aiohttp writes ``Server: Python/<version> aiohttp/<version>`` unless a response sets its own.
The ``on_response_prepare`` signal sets it on every response of an application; responses
aiohttp writes before any application sees the request (a request line or header it cannot
parse: 400) take the library's module default, so that default is replaced as well.
"""

from __future__ import annotations

from aiohttp import web, web_response

SERVER = "acmegate"


async def _set_server(_: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = SERVER


def hide_server_version(app: web.Application) -> web.Application:
    """Make every response of ``app`` (and aiohttp's own error answers) say ``Server:
    acmegate``; returns ``app``."""
    # The default aiohttp falls back to when no application handles the request (a name
    # web_response imported from aiohttp.http, read when each response is prepared).
    setattr(web_response, "SERVER_SOFTWARE", SERVER)  # noqa: B010 (not a re-exported name)
    app.on_response_prepare.append(_set_server)
    return app
