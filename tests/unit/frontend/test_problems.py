"""The one table of the edge: every error kind becomes an RFC 7807 problem document with the
RFC 8555 §6.7 type URN and the HTTP status a client expects (Boulder's and step-ca's)."""

from __future__ import annotations

import json

import msgspec
import pytest

from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.common.messages import Identifier, Problem, Subproblem
from acmegate.frontend.problems import (
    PROBLEM_CONTENT_TYPE,
    URN_PREFIX,
    problem_document,
    problem_response,
    status_of,
)

# HTTP outcomes that are no ACME error type: the `malformed` URN (or serverInternal for a
# service that cannot answer) with their own status.
HTTP_KINDS = {
    ErrorKind.NOT_FOUND: (404, "malformed"),
    ErrorKind.METHOD_NOT_ALLOWED: (405, "malformed"),
    ErrorKind.CONFLICT: (409, "malformed"),
    ErrorKind.PAYLOAD_TOO_LARGE: (413, "malformed"),
    ErrorKind.UNSUPPORTED_MEDIA_TYPE: (415, "malformed"),
    ErrorKind.UNAVAILABLE: (503, "serverInternal"),
}
STATUSES = {
    ErrorKind.UNAUTHORIZED: 403,
    ErrorKind.ORDER_NOT_READY: 403,
    ErrorKind.EXTERNAL_ACCOUNT_REQUIRED: 403,
    # Boulder answers CAA refusals with 403 (the CA may not issue for the name).
    ErrorKind.CAA: 403,
    # RFC 9773 §7.4; Boulder answers 409 Conflict.
    ErrorKind.ALREADY_REPLACED: 409,
    ErrorKind.USER_ACTION_REQUIRED: 403,
    ErrorKind.RATE_LIMITED: 429,
    ErrorKind.SERVER_INTERNAL: 500,
}


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_every_kind_has_a_type_and_a_status(kind: ErrorKind) -> None:
    document = problem_document(Problem(kind, "detail"))
    if kind in HTTP_KINDS:
        status, wire_type = HTTP_KINDS[kind]
    else:
        # An ACME error type is its own name under the URN; a client's fault is 400.
        status, wire_type = STATUSES.get(kind, 400), str(kind)
    assert document == {"type": URN_PREFIX + wire_type, "detail": "detail", "status": status}
    assert status_of(kind) == status


def test_the_urn_prefix_is_rfc_8555s() -> None:
    assert URN_PREFIX == "urn:ietf:params:acme:error:"
    bad_nonce = problem_document(Problem(ErrorKind.BAD_NONCE, "stale"))
    assert bad_nonce["type"] == "urn:ietf:params:acme:error:badNonce"
    attestation = problem_document(Problem(ErrorKind.BAD_ATTESTATION_STATEMENT, "x"))
    # draft-ietf-acme-device-attest §9.3 registers it in the same namespace.
    assert attestation["type"] == "urn:ietf:params:acme:error:badAttestationStatement"


def test_identifier_and_subproblems_are_rendered() -> None:
    device = Identifier("permanent-identifier", "C02X")
    problem = Problem(
        ErrorKind.BAD_ATTESTATION_STATEMENT,
        "permanent identifier does not match",
        subproblems=[
            Subproblem(ErrorKind.REJECTED_IDENTIFIER, "not this device", device),
            Subproblem(ErrorKind.MALFORMED, "no identifier"),
        ],
        identifier=device,
    )
    assert problem_document(problem) == {
        "type": URN_PREFIX + "badAttestationStatement",
        "detail": "permanent identifier does not match",
        "status": 400,
        "identifier": {"type": "permanent-identifier", "value": "C02X"},
        # RFC 8555 §6.7.1: each subproblem has its own type and, if any, its identifier.
        "subproblems": [
            {
                "type": URN_PREFIX + "rejectedIdentifier",
                "detail": "not this device",
                "identifier": {"type": "permanent-identifier", "value": "C02X"},
            },
            {"type": URN_PREFIX + "malformed", "detail": "no identifier"},
        ],
    }


def test_a_problem_response_is_problem_json_with_its_status() -> None:
    response = problem_response(AcmeError(ErrorKind.ORDER_NOT_READY, "order is pending"))
    assert response.status == 403
    assert response.content_type == PROBLEM_CONTENT_TYPE == "application/problem+json"
    assert json.loads(response.body) == {  # type: ignore[arg-type]
        "type": URN_PREFIX + "orderNotReady",
        "detail": "order is pending",
        "status": 403,
    }
    assert "Retry-After" not in response.headers
    extra = problem_response(AcmeError(ErrorKind.MALFORMED, "m"), extra={"algorithms": ["ES256"]})
    assert json.loads(extra.body)["algorithms"] == ["ES256"]  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", [ErrorKind.UNAVAILABLE, ErrorKind.RATE_LIMITED])
def test_come_back_later_problems_say_when(kind: ErrorKind) -> None:
    response = problem_response(AcmeError(kind, "later"))
    assert response.headers["Retry-After"] == "5"


def test_a_rate_limited_problem_from_the_bus_keeps_its_retry_after() -> None:
    # The signer's renewal window refuses an order; the problem crosses the bus and is stored
    # on the order, and the finalize answer still says when to come back (RFC 8555 §6.6).
    sent = AcmeError(ErrorKind.RATE_LIMITED, "renewal window", retry_after=3599).to_problem()
    received = msgspec.json.decode(msgspec.json.encode(sent), type=Problem)
    response = problem_response(AcmeError.from_problem(received))
    assert response.status == 429
    assert response.headers["Retry-After"] == "3599"
    assert "retry_after" not in json.loads(response.text)
