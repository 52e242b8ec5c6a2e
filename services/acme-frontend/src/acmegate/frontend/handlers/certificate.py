"""Certificate download (RFC 8555 §7.4.2): POST-as-GET, ``application/pem-certificate-chain``.

Re-enrollment (docs/profiles.md): when an enrollment policy says ``previous_certificates:
revoke``, the account's download of a certificate is the moment the device has its new
certificate, so the signer is asked to revoke (reason superseded) the device's older ones of
the same policy. The signer decides which policy the certificate came from; asking again on a
second download finds nothing left to revoke.
"""

from __future__ import annotations

from aiohttp import web

from acmegate.common.bus import Queue
from acmegate.common.errors import malformed, not_found, unauthorized
from acmegate.common.messages import RevokeCertificates
from acmegate.common.vocabulary import RevocationReason
from acmegate.frontend.auth import authenticate_deferred
from acmegate.frontend.context import FRONTEND, Frontend
from acmegate.frontend.db import orders as order_db
from acmegate.frontend.linker import resource_id

PEM_CHAIN = "application/pem-certificate-chain"


def _supersedes(frontend: Frontend) -> bool:
    return any(p.previous_certificates == "revoke" for p in frontend.config.enrollment_policies)


async def certificate(request: web.Request) -> web.Response:
    frontend = request.app[FRONTEND]
    signed = await authenticate_deferred(request, frontend)
    found = await order_db.get_certificate(frontend.pool, resource_id(request), signed.gate)
    if not signed.is_post_as_get:
        raise malformed("certificates are fetched with POST-as-GET (empty payload)")
    if found is None:
        raise not_found("no such certificate")
    if found.account_id != signed.require_account().id:
        raise unauthorized("this certificate belongs to another account")
    if _supersedes(frontend):
        # Published before answering: a download that fails to publish is answered with an
        # error and retried by the client, so no supersession is lost.
        await frontend.bus.publish(
            Queue.SIGNER_REVOKE,
            RevokeCertificates(
                correlation_id=signed.correlation_id,
                reason=RevocationReason.SUPERSEDED,
                superseded_by=found.serial,
                detail=f"superseded by {found.serial}, downloaded by account {found.account_id}",
            ),
        )
    response = web.Response(text=found.chain_pem)
    response.content_type = PEM_CHAIN
    response.headers.add("Link", f'<{frontend.linker.order(found.order_id)}>;rel="up"')
    return response
