"""Inputs that once reached a 500: each edge answers them with a 4xx in its own error format.

ACME answers ``application/problem+json`` with a fresh ``Replay-Nonce`` (RFC 8555 §6.5, §6.7);
the admin API a problem document and its login form the login page; the RADIUS endpoint a JSON
``Reply-Message`` (docs/radius.md). Non-UTF-8 bytes and JSON nested thousands deep are refused
where they are decoded, by one JSON decoder with a depth guard.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from yarl import URL

from acmegate.testkit.acme_session import AcmeResponse, AcmeSession
from acmegate.testkit.jws import b64url, sign_bytes
from tests.fuzz.conftest import Edges

pytestmark = pytest.mark.e2e

PROBLEM = "application/problem+json"
DEEP = b"[" * 5000 + b"]" * 5000
DEEP_OBJECT = b'{"a":' * 5000 + b"1" + b"}" * 5000


@pytest.fixture
async def acme(edges: Edges) -> AsyncIterator[AcmeSession]:
    async with AcmeSession(edges.directory_url) as session:
        await session.new_account()
        yield session


def acme_problem(response: AcmeResponse, status: int = 400, kind: str = "malformed") -> str:
    """The problem's detail, after checking what every ACME error must carry."""
    assert (response.status, response.content_type) == (status, PROBLEM), (
        response.status,
        response.text,
    )
    assert response.nonce, "every ACME error carries a fresh Replay-Nonce (RFC 8555 §6.5)"
    problem = response.problem()
    assert problem is not None and problem.kind == kind, response.text
    assert "Traceback" not in response.text
    return problem.detail


def raw_header_jws(acme: AcmeSession, protected: bytes, payload: bytes) -> dict[str, str]:
    """A JWS whose protected header is exactly ``protected`` (bytes no JSON encoder writes),
    correctly signed by the account key."""
    protected_b64, payload_b64 = b64url(protected), b64url(payload)
    signature = sign_bytes(acme.signer.key, f"{protected_b64}.{payload_b64}".encode("ascii"))
    return {"protected": protected_b64, "payload": payload_b64, "signature": b64url(signature)}


async def header_start(acme: AcmeSession, url: str) -> bytes:
    """``{"alg":…,"kid":…,"nonce":…,"url":…`` without the closing brace."""
    header = {"alg": "ES256", "kid": acme.account_url, "nonce": await acme.take_nonce(), "url": url}
    return json.dumps(header).encode()[:-1]


async def test_non_utf8_bytes_in_the_jws_body_are_malformed(
    edges: Edges, acme: AcmeSession
) -> None:
    url = await acme.url_of("newOrder")
    for body in (
        b'{"protected": "\xff\xfe", "payload": "", "signature": ""}',
        b'{"\xc3\x28": 1}',
        b'{"protected": "eyJhbGciOiJFUzI1NiJ9", "payload": "\xed\xa0\x80", "signature": "AA"}',
    ):
        detail = acme_problem(await acme.post_raw(url, body))
        assert "UTF-8" in detail, detail


async def test_non_utf8_bytes_in_the_protected_header_are_malformed(acme: AcmeSession) -> None:
    url = await acme.url_of("newOrder")
    header = await header_start(acme, url) + b',"note":"\xff\xfe"}'
    response = await acme.post_raw(url, raw_header_jws(acme, header, b"{}"))
    detail = acme_problem(response)
    assert detail.startswith("JWS protected header") and "UTF-8" in detail, detail


async def test_non_utf8_bytes_in_the_payload_are_malformed_at_every_post(
    acme: AcmeSession,
) -> None:
    assert acme.account_url is not None
    urls = [
        await acme.url_of("newOrder"),
        await acme.url_of("keyChange"),
        await acme.url_of("revokeCert"),
        acme.account_url,
    ]
    for url in urls:
        for payload in (b'{"identifiers": "\xff"}', b'["\x80"]', b'{"status": "\xed\xa0\x80"}'):
            body = acme.sign(url, payload, nonce=await acme.take_nonce())
            detail = acme_problem(await acme.post_raw(url, body))
            # keyChange's payload is a JWS: its unknown members are refused first.
            assert "UTF-8" in detail or url.endswith("/key-change"), (url, detail)
    # newAccount reads its payload from a request signed with a jwk.
    url = await acme.url_of("newAccount")
    body = acme.sign(url, b'{"contact": ["\xff"]}', nonce=await acme.take_nonce(), use_jwk=True)
    assert "UTF-8" in acme_problem(await acme.post_raw(url, body))


async def test_json_nested_5000_deep_in_the_payload_or_header_is_malformed(
    acme: AcmeSession,
) -> None:
    url = await acme.url_of("newOrder")
    for payload in (DEEP, DEEP_OBJECT, b'{"identifiers": ' + DEEP + b"}"):
        body = acme.sign(url, payload, nonce=await acme.take_nonce())
        detail = acme_problem(await acme.post_raw(url, body))
        assert "nested" in detail, detail
    header = await header_start(acme, url) + b',"x":' + DEEP + b"}"
    detail = acme_problem(await acme.post_raw(url, raw_header_jws(acme, header, b"{}")))
    assert detail.startswith("JWS protected header") and "nested" in detail, detail
    # The JWS body itself, deep instead of flattened.
    assert "nested" in acme_problem(await acme.post_raw(url, b'{"protected": ' + DEEP + b"}"))


@pytest.mark.parametrize(
    "cursor", ["1" * 23, "9" * 5000, "²", "１２３", "-5", "", "99999999999999999999"]
)
async def test_an_orders_cursor_that_is_no_cursor_is_malformed(
    acme: AcmeSession, cursor: str
) -> None:
    assert acme.account_url is not None
    # Signed as sent: percent-encoded (RFC 8555 §6.4 compares the URL the client used).
    url = str(URL(f"{acme.account_url}/orders").with_query(before=cursor))
    body = acme.sign(url, None, nonce=await acme.take_nonce())
    detail = acme_problem(await acme.post_raw(url, body))
    assert "'before'" in detail, detail


async def test_a_non_utf8_login_form_gets_the_login_page_again(edges: Edges) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{edges.admin_url}/login",
            data=b"token=\xff\xfe\xfd",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            allow_redirects=False,
        ) as response,
    ):
        page = await response.text()
        assert (response.status, response.content_type) == (400, "text/html")
        assert "form" in page and "UTF-8" in page
        assert "Set-Cookie" not in response.headers


async def test_non_utf8_or_deep_json_in_an_admin_api_body_is_a_problem(edges: Edges) -> None:
    headers = {
        "Authorization": f"Bearer {edges.admin_token}",
        "Content-Type": "application/json",
    }
    url = f"{edges.admin_url}/api/v1/lookup-policies/inventory-issuance/validate"
    async with aiohttp.ClientSession() as http:
        for body in (b'{"identity": "\xff"}', b'{"identity": ' + DEEP + b"}", DEEP_OBJECT):
            async with http.post(url, data=body, headers=headers) as response:
                document = await response.json(content_type=None)
                assert (response.status, response.content_type) == (400, PROBLEM), document
                assert document["detail"].startswith("request body:"), document


async def test_non_utf8_or_deep_json_at_the_radius_endpoint_is_a_400_reply(
    edges: Edges,
) -> None:
    headers = {
        "Authorization": f"Bearer {edges.radius_token}",
        "Content-Type": "application/json",
    }
    async with aiohttp.ClientSession() as http:
        for body in (
            b'{"certificate": "\xff\xfe"}',
            b'{"TLS-Client-Cert-Common-Name": {"value": ["\xc3\x28"]}}',
            DEEP,
            DEEP_OBJECT,
            b'{"TLS-Client-Cert-Common-Name": ' + DEEP + b"}",
        ):
            async with http.post(
                f"{edges.radius_url}/radius/authorize", data=body, headers=headers
            ) as response:
                answer = await response.json(content_type=None)
                assert (response.status, response.content_type) == (400, "application/json")
                assert answer["Reply-Message"].startswith(
                    "acmegate: the body is not acceptable JSON"
                ), answer


async def test_a_radius_reason_quoting_control_characters_still_gets_its_answer(
    edges: Edges,
) -> None:
    """The refusal quotes the issuer the caller sent; a line feed in it once broke the
    reason header, and the connection was dropped without an answer."""
    attributes = {
        "TLS-Client-Cert-Issuer": {"type": "string", "value": ["/CN=Evil\r\nX-Injected: 1"]},
        "TLS-Client-Cert-Common-Name": {"type": "string", "value": ["C02E2E00001"]},
    }
    headers = {
        "Authorization": f"Bearer {edges.radius_token}",
        "Content-Type": "application/json",
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{edges.radius_url}/radius/authorize",
            data=json.dumps(attributes).encode(),
            headers=headers,
        ) as response,
    ):
        answer = await response.json(content_type=None)
        assert response.status == 401
        assert "not issued by this gateway" in answer["Reply-Message"]
        assert "X-Injected" not in response.headers
        assert response.headers["X-Acmegate-Reason"].isprintable()
