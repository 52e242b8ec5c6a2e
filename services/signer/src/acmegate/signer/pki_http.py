"""The signer's PKI listener (``pki:``): what relying parties fetch over plain HTTP.

- ``GET /crl/<ca>.crl``: the CA's newest CRL, DER, ``application/pkix-crl`` (RFC 5280
  §4.2.1.13 wants DER over HTTP), the same from every replica (``pki.crls``);
- ``GET /ca/<ca>.cer``: the CA certificate, DER, ``application/pkix-cert`` (the AIA
  caIssuers URL, RFC 5280 §4.2.2.1);
- ``POST /ocsp/<ca>`` with ``application/ocsp-request``, and ``GET /ocsp/<ca>/<base64>``
  (RFC 6960 Appendix A.1): the OCSP responder. A GET answer without a nonce carries the
  caching headers of RFC 5019 §6.2 (``max-age`` up to its nextUpdate, ``ETag``,
  ``Last-Modified``, ``Expires``), so an HTTP cache in front can share it.

Plain HTTP is deliberate: CRLs and OCSP responses are signed, and a relying party that
checks revocation must not depend on TLS whose own revocation check would loop.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import datetime
from email.utils import format_datetime
from urllib.parse import unquote

import asyncpg
import structlog
from aiohttp import web
from cryptography.hazmat.primitives import serialization

from acmegate.common.config.model import PkiConfig
from acmegate.common.http_observation import observe_requests
from acmegate.common.server_header import hide_server_version
from acmegate.signer.authorities import Authorities
from acmegate.signer.db.crls import latest_crl
from acmegate.signer.ocsp import OcspAnswer, OcspResponder

log = structlog.get_logger(__name__)

CRL_TYPE = "application/pkix-crl"
CERT_TYPE = "application/pkix-cert"
OCSP_REQUEST_TYPE = "application/ocsp-request"
OCSP_RESPONSE_TYPE = "application/ocsp-response"
# Seconds a relying party is asked to wait while the first CRL of a CA is being made.
FIRST_CRL_RETRY_AFTER = 5
# An OCSP request for one certificate is about 100 bytes; a nonce and a signature (unused
# here) add a few hundred.
MAX_REQUEST_BYTES = 8 * 1024

_AUTHORITIES = web.AppKey("authorities", Authorities)
_POOL = web.AppKey("pool", asyncpg.Pool)
_OCSP = web.AppKey("ocsp", OcspResponder)


async def crl(request: web.Request) -> web.Response:
    name = request.match_info["file"].removesuffix(".crl")
    authority = request.app[_AUTHORITIES].get(name)
    if authority is None or not authority.config.crl.enabled or name == request.match_info["file"]:
        raise web.HTTPNotFound(text=f"no CRL named {request.match_info['file']}\n")
    found = await latest_crl(request.app[_POOL], name)
    if found is None:
        # Only between the first start and the first CRL (seconds).
        raise web.HTTPServiceUnavailable(
            text="the first CRL is being generated\n",
            headers={"Retry-After": str(FIRST_CRL_RETRY_AFTER)},
        )
    response = web.Response(body=found.der, content_type=CRL_TYPE)
    response.last_modified = found.this_update
    # Short enough that a revocation shows within a minute through any HTTP cache.
    response.headers["Cache-Control"] = "public, max-age=60"
    return response


async def ca_certificate(request: web.Request) -> web.Response:
    name = request.match_info["file"].removesuffix(".cer")
    authority = request.app[_AUTHORITIES].get(name)
    if authority is None or name == request.match_info["file"]:
        raise web.HTTPNotFound(text=f"no CA certificate named {request.match_info['file']}\n")
    response = web.Response(
        body=authority.certificate.public_bytes(serialization.Encoding.DER),
        content_type=CERT_TYPE,
    )
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


async def ocsp_post(request: web.Request) -> web.Response:
    if request.content_type != OCSP_REQUEST_TYPE:
        raise web.HTTPUnsupportedMediaType(text=f"send {OCSP_REQUEST_TYPE}\n")
    body = await request.read()
    answer = await request.app[_OCSP].respond(request.match_info["ca"], body)
    return web.Response(body=answer.der, content_type=OCSP_RESPONSE_TYPE)


async def ocsp_get(request: web.Request) -> web.Response:
    # RFC 6960 A.1: GET {url}/{url-encoding of base-64 encoding of the DER OCSPRequest}.
    # The raw path keeps '%2F' and '+' as sent, so '/' inside the base64 survives.
    prefix = f"/ocsp/{request.match_info['ca']}/"
    encoded = unquote(request.raw_path.split("?", 1)[0][len(prefix) :])
    try:
        body = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        body = b""
    responder = request.app[_OCSP]
    answer = await responder.respond(request.match_info["ca"], body)
    response = web.Response(body=answer.der, content_type=OCSP_RESPONSE_TYPE)
    _cache_headers(response, answer, responder.now())
    return response


def _cache_headers(response: web.Response, answer: OcspAnswer, now: datetime) -> None:
    """RFC 5019 §6.2: a shareable answer may be cached until its nextUpdate; one that echoes
    a nonce, or an error, must not be served to anyone else."""
    if answer.this_update is None or answer.next_update is None:
        response.headers["Cache-Control"] = "no-store"
        return
    max_age = max(0, int((answer.next_update - now).total_seconds()))
    response.headers["Cache-Control"] = f"max-age={max_age}, public, no-transform, must-revalidate"
    response.headers["ETag"] = f'"{hashlib.sha256(answer.der).hexdigest()}"'
    response.last_modified = answer.this_update
    response.headers["Expires"] = format_datetime(answer.next_update, usegmt=True)


def create_app(
    authorities: Authorities, pool: asyncpg.Pool, responder: OcspResponder
) -> web.Application:
    app = web.Application(
        client_max_size=MAX_REQUEST_BYTES, middlewares=[observe_requests("pki", service="signer")]
    )
    app[_AUTHORITIES] = authorities
    app[_POOL] = pool
    app[_OCSP] = responder
    app.router.add_get("/crl/{file}", crl)
    app.router.add_get("/ca/{file}", ca_certificate)
    app.router.add_post("/ocsp/{ca}", ocsp_post)
    app.router.add_get("/ocsp/{ca}/{request:.+}", ocsp_get)
    return hide_server_version(app)


class PkiHttpServer:
    """The listener of ``pki.host``/``pki.port`` (started and stopped by the signer)."""

    def __init__(
        self,
        config: PkiConfig,
        authorities: Authorities,
        pool: asyncpg.Pool,
        responder: OcspResponder,
    ) -> None:
        self._config = config
        self._app = create_app(authorities, pool, responder)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner,
            self._config.host,
            self._config.port,
            backlog=1024,
            # Replicas on one host may share the port (docs/operations.md "High availability").
            reuse_port=self._config.reuse_port or None,
        )
        try:
            await site.start()
        except OSError:
            await self.stop()
            raise
        log.info(
            "PKI listener started",
            host=self._config.host,
            port=self._config.port,
            base_url=self._config.base_url,
        )

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
