"""``/api/v1/certificates``: search the signer's inventory, show one, revoke one."""

from __future__ import annotations

import re

from aiohttp import web

from acmegate.common.admin_messages import (
    AdminCertificate,
    AdminCertificateList,
    AdminQueryCertificates,
    AdminRevokeCertificate,
    AdminShowCertificate,
)
from acmegate.common.bus import RpcQueue
from acmegate.common.errors import malformed
from acmegate.common.vocabulary import CertificateStatus, RevocationReason
from acmegate.frontend.admin.context import ADMIN
from acmegate.frontend.admin.params import json_body, query_choice, query_int, query_text
from acmegate.frontend.admin.render import json_response
from acmegate.frontend.admin.rpc import ask, correlation_id
from acmegate.frontend.admin.views import RevokeRequest
from acmegate.frontend.db.revocations import record_revoked_serial

STATUSES = tuple(CertificateStatus)
# RFC 5280 §5.3.1 reasons a revocation here may carry (certificateHold/removeFromCRL: no).
REASONS = tuple(RevocationReason)
# Hexadecimal, any case, optional colons between octets (as openssl prints serials).
SERIAL_PATTERN = r"^(0x)?[0-9A-Fa-f]+(:[0-9A-Fa-f]+)*$"
_SERIAL = re.compile(SERIAL_PATTERN)
# A device serial as Apple attests it (letters and digits; a little room for other vendors).
DEVICE_SERIAL_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
_DEVICE_SERIAL = re.compile(DEVICE_SERIAL_PATTERN)
# A device's history is short (one certificate per enrollment); this bounds a runaway one.
HISTORY_LIMIT = 1000


def _serial(request: web.Request) -> str:
    serial = request.match_info["serial"]
    if len(serial) > 128 or not _SERIAL.match(serial):
        raise malformed("serial: must be a hexadecimal serial number (colons allowed)")
    return serial


async def list_certificates(request: web.Request) -> web.Response:
    query = AdminQueryCertificates(
        correlation_id=correlation_id(),
        device_serial=query_text(request, "device"),
        account_id=query_text(request, "account"),
        ca=query_text(request, "ca"),
        status=query_choice(request, "status", STATUSES),
        limit=query_int(request, "limit", default=100, minimum=1, maximum=1000),
    )
    reply = await ask(request.app[ADMIN], RpcQueue.SIGNER, query, AdminCertificateList)
    return json_response({"certificates": reply.certificates})


def device_serial(value: str) -> str:
    if not _DEVICE_SERIAL.match(value):
        raise malformed("serial: must be a device serial number (letters, digits, . _ -)")
    return value


async def device_history(request: web.Request) -> web.Response:
    """Every certificate issued to one attested device, newest first: re-enrollments show
    as the older ones revoked with reason ``superseded`` (docs/profiles.md)."""
    serial = device_serial(request.match_info["serial"])
    query = AdminQueryCertificates(
        correlation_id=correlation_id(), device_serial=serial, limit=HISTORY_LIMIT
    )
    reply = await ask(request.app[ADMIN], RpcQueue.SIGNER, query, AdminCertificateList)
    return json_response({"device_serial": serial, "certificates": reply.certificates})


async def show_certificate(request: web.Request) -> web.Response:
    """One certificate with its names, chain and enrollment record."""
    request_message = AdminShowCertificate(correlation_id=correlation_id(), serial=_serial(request))
    reply = await ask(request.app[ADMIN], RpcQueue.SIGNER, request_message, AdminCertificate)
    return json_response({"certificate": reply.certificate})


async def revoke_certificate(request: web.Request) -> web.Response:
    """Revoke it (idempotent: ``revoked_now`` is false if it was revoked before)."""
    serial = _serial(request)
    body = await json_body(request, RevokeRequest, required=False)
    if body.reason not in REASONS:
        raise malformed(f"$.reason: must be one of {', '.join(REASONS)}")
    revoke = AdminRevokeCertificate(
        correlation_id=correlation_id(), serial=serial, reason=RevocationReason(body.reason)
    )
    admin = request.app[ADMIN]
    reply = await ask(admin, RpcQueue.SIGNER, revoke, AdminCertificate)
    shown = reply.certificate
    if shown.revoked_at is not None:
        # ARI (RFC 9773) reads revocations from the frontend's own rows.
        reason = shown.revocation_reason or RevocationReason(body.reason)
        await record_revoked_serial(
            admin.frontend.pool, shown.serial, reason=reason.code, at=shown.revoked_at
        )
    return json_response({"certificate": shown, "revoked_now": bool(reply.revoked_now)})
