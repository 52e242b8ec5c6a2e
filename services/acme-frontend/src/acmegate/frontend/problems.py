"""ErrorKind → RFC 7807 problem document: the one table of the edge (docs/design.md "Errors").

RFC 8555 §6.7 names the types; the statuses follow Boulder/step-ca (``unauthorized`` and
``orderNotReady`` are 403, rate limiting 429, everything else the client caused is 400).
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.common.messages import Problem
from acmegate.frontend import retry_after

URN_PREFIX = "urn:ietf:params:acme:error:"
PROBLEM_CONTENT_TYPE = "application/problem+json"

# kind → (status, wire type). Kinds that are HTTP outcomes rather than ACME types use the
# `malformed` URN with their own status.
_TABLE: dict[ErrorKind, tuple[int, str]] = {
    ErrorKind.ACCOUNT_DOES_NOT_EXIST: (400, "accountDoesNotExist"),
    ErrorKind.ALREADY_REVOKED: (400, "alreadyRevoked"),
    ErrorKind.ALREADY_REPLACED: (409, "alreadyReplaced"),
    ErrorKind.BAD_CSR: (400, "badCSR"),
    ErrorKind.BAD_NONCE: (400, "badNonce"),
    ErrorKind.BAD_PUBLIC_KEY: (400, "badPublicKey"),
    ErrorKind.BAD_REVOCATION_REASON: (400, "badRevocationReason"),
    ErrorKind.BAD_SIGNATURE_ALGORITHM: (400, "badSignatureAlgorithm"),
    ErrorKind.CAA: (403, "caa"),
    ErrorKind.COMPOUND: (400, "compound"),
    ErrorKind.CONNECTION: (400, "connection"),
    ErrorKind.DNS: (400, "dns"),
    ErrorKind.EXTERNAL_ACCOUNT_REQUIRED: (403, "externalAccountRequired"),
    ErrorKind.INCORRECT_RESPONSE: (400, "incorrectResponse"),
    ErrorKind.INVALID_CONTACT: (400, "invalidContact"),
    ErrorKind.MALFORMED: (400, "malformed"),
    ErrorKind.ORDER_NOT_READY: (403, "orderNotReady"),
    ErrorKind.RATE_LIMITED: (429, "rateLimited"),
    ErrorKind.REJECTED_IDENTIFIER: (400, "rejectedIdentifier"),
    ErrorKind.SERVER_INTERNAL: (500, "serverInternal"),
    ErrorKind.TLS: (400, "tls"),
    ErrorKind.UNAUTHORIZED: (403, "unauthorized"),
    ErrorKind.UNSUPPORTED_CONTACT: (400, "unsupportedContact"),
    ErrorKind.UNSUPPORTED_IDENTIFIER: (400, "unsupportedIdentifier"),
    ErrorKind.USER_ACTION_REQUIRED: (403, "userActionRequired"),
    ErrorKind.BAD_ATTESTATION_STATEMENT: (400, "badAttestationStatement"),
    ErrorKind.NOT_FOUND: (404, "malformed"),
    ErrorKind.METHOD_NOT_ALLOWED: (405, "malformed"),
    ErrorKind.PAYLOAD_TOO_LARGE: (413, "malformed"),
    ErrorKind.UNSUPPORTED_MEDIA_TYPE: (415, "malformed"),
    ErrorKind.UNAVAILABLE: (503, "serverInternal"),
    ErrorKind.CONFLICT: (409, "malformed"),
}


def problem_document(problem: Problem) -> dict[str, Any]:
    """The RFC 7807 JSON object of ``problem`` (also used for `error` fields in objects)."""
    status, wire_type = _TABLE[problem.kind]
    document: dict[str, Any] = {
        "type": URN_PREFIX + wire_type,
        "detail": problem.detail,
        "status": status,
    }
    if problem.identifier is not None:
        document["identifier"] = {
            "type": problem.identifier.type,
            "value": problem.identifier.value,
        }
    if problem.subproblems:
        document["subproblems"] = [
            {
                "type": URN_PREFIX + _TABLE[sub.kind][1],
                "detail": sub.detail,
                **(
                    {"identifier": {"type": sub.identifier.type, "value": sub.identifier.value}}
                    if sub.identifier is not None
                    else {}
                ),
            }
            for sub in problem.subproblems
        ]
    return document


def status_of(kind: ErrorKind) -> int:
    return _TABLE[kind][0]


def problem_response(error: AcmeError, *, extra: dict[str, Any] | None = None) -> web.Response:
    """An ``application/problem+json`` response for ``error``."""
    document = problem_document(error.to_problem())
    if extra:
        document.update(extra)
    response = web.Response(
        body=msgspec.json.encode(document),
        status=document["status"],
        content_type=PROBLEM_CONTENT_TYPE,
    )
    if error.retry_after is not None:
        # RFC 8555 §6.6: a rateLimited answer says when to come back.
        response.headers["Retry-After"] = retry_after.header(error.retry_after)
    elif error.kind in (ErrorKind.UNAVAILABLE, ErrorKind.RATE_LIMITED):
        response.headers["Retry-After"] = retry_after.header(retry_after.UNAVAILABLE)
    return response
