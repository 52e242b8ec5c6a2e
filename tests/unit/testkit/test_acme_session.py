"""acme_session.py response parsing: Link, Retry-After and problem documents."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from multidict import CIMultiDict, CIMultiDictProxy

from acmegate.testkit.acme_session import AcmeProblem, AcmeResponse


def _response(status: int, body: bytes = b"", **headers: str | list[str]) -> AcmeResponse:
    multi: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        for item in value if isinstance(value, list) else [value]:
            multi.add(name.replace("_", "-"), item)
    return AcmeResponse("POST", "https://acme.test/x", status, CIMultiDictProxy(multi), body)


def test_links_are_found_by_relation_across_repeated_headers() -> None:
    response = _response(
        200,
        Link=['<https://acme.test/dir>;rel="index"', "<https://acme.test/authz/1>; rel=up"],
    )
    assert response.links("up") == ["https://acme.test/authz/1"]
    assert response.links("index") == ["https://acme.test/dir"]
    assert response.links("alternate") == []


def test_retry_after_in_seconds_and_as_http_date() -> None:
    assert _response(200, Retry_After="3").retry_after() == 3.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    delay = _response(200, Retry_After=later).retry_after()
    assert delay is not None and 25 < delay <= 30
    assert _response(200).retry_after() is None
    assert _response(200, Retry_After="soon").retry_after() is None


def test_problem_document_with_subproblems() -> None:
    document = {
        "type": "urn:ietf:params:acme:error:badAttestationStatement",
        "detail": "permanent identifier does not match",
        "subproblems": [
            {
                "type": "urn:ietf:params:acme:error:rejectedIdentifier",
                "identifier": {"type": "permanent-identifier", "value": "X"},
            }
        ],
    }
    response = _response(
        400, json.dumps(document).encode(), Content_Type="application/problem+json"
    )
    problem = response.problem()
    assert isinstance(problem, AcmeProblem)
    assert (problem.status, problem.kind) == (400, "badAttestationStatement")
    assert problem.subproblem_kinds == ["rejectedIdentifier"]
    assert problem.body == document


def test_an_error_without_a_problem_document_still_becomes_a_problem() -> None:
    problem = _response(502, b"Bad Gateway", Content_Type="text/plain").problem()
    assert problem is not None
    assert (problem.status, problem.type, problem.detail) == (502, "about:blank", "Bad Gateway")


def test_success_is_not_a_problem() -> None:
    assert _response(201, b"{}", Content_Type="application/json").problem() is None
