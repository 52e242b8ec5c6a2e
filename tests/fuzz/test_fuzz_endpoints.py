"""Property-based fuzzing of every public endpoint of a running gateway (hypothesis).

Generated bodies, headers, query strings, methods and paths go to each ACME, admin and RADIUS
endpoint; the properties are what a client sees:

- never a 5xx;
- ACME: every error is ``application/problem+json`` with an ACME ``type`` (RFC 8555 §6.7), and
  every answer carries a ``Replay-Nonce`` never seen before (§6.5);
- admin API: every error is a problem document whose ``status`` is the HTTP status, except the
  login form, which answers with its HTML page (docs/admin-api.md);
- RADIUS: every refusal is JSON with a ``Reply-Message`` (docs/radius.md).

The signed ACME requests carry a valid JWS of a real account (fresh nonce, the URL as sent), so
the payloads reach the handlers instead of stopping at the signature check.

Reproducible and bounded: hypothesis runs derandomized, without an example database, with a
fixed number of examples per test (the module takes well under a minute here). It runs in a
worker thread; each request is sent on the gateway's event loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from yarl import URL

from acmegate.testkit.acme_session import AcmeResponse, AcmeSession
from acmegate.testkit.apple_ca import AttestationCA, LeafClaims
from acmegate.testkit.device import SimulatedDevice
from acmegate.testkit.jws import b64url
from tests.fuzz.conftest import Edges

pytestmark = pytest.mark.e2e

T = TypeVar("T")
PROBLEM = "application/problem+json"
ACME_ERROR = "urn:ietf:params:acme:error:"


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )


# --- strategies ------------------------------------------------------------------------------

# Header values aiohttp will put on the wire (visible ASCII and spaces).
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
ACME_FIELDS = [
    "identifiers",
    "csr",
    "attObj",
    "error",
    "status",
    "contact",
    "onlyReturnExisting",
    "termsOfServiceAgreed",
    "externalAccountBinding",
    "certificate",
    "reason",
    "account",
    "oldKey",
    "notBefore",
    "notAfter",
    "protected",
    "payload",
    "signature",
]
base64ish = st.binary(max_size=120).map(b64url) | st.text(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/.", max_size=60
)
identifier = st.fixed_dictionaries(
    {"type": st.sampled_from(["permanent-identifier", "dns", "ip"]) | st.text(max_size=8)},
    optional={"value": st.text(max_size=40) | json_values},
)
acme_shaped = st.fixed_dictionaries(
    {},
    optional={
        name: json_values
        | base64ish
        | st.lists(identifier, max_size=3)
        | st.text(max_size=60)
        | st.integers(min_value=-5, max_value=12)
        for name in ACME_FIELDS
    },
)


def encoded(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


deep_nesting = st.integers(min_value=30, max_value=3000).map(lambda n: b"[" * n + b"]" * n)
payloads = st.one_of(
    st.just(b""),
    st.binary(max_size=200),
    json_values.map(encoded),
    acme_shaped.map(encoded),
    deep_nesting,
)
query_strings = st.one_of(
    st.just({}),
    st.dictionaries(
        st.sampled_from(["before", "cursor", "x"]) | st.text(max_size=8),
        st.text(max_size=30),
        max_size=2,
    ),
    st.builds(lambda digits: {"before": digits}, st.text("0123456789²١１-", max_size=30)),
)
header_overrides = st.dictionaries(
    st.sampled_from(["alg", "nonce", "url", "kid", "jwk", "crit", "b64", "typ", "x5u", "extra"]),
    json_values,
    max_size=2,
)
content_types = (
    st.sampled_from(
        [
            "application/jose+json",
            "application/json",
            "application/x-www-form-urlencoded",
            "application/x-pem-file",
            "application/pkix-cert",
            "text/plain",
            "multipart/form-data; boundary=x",
            "application/jose+json; charset=nonsense",
            "",
        ]
    )
    | header_text
)


# --- running requests on the gateway's loop from hypothesis' thread -------------------------


@dataclass
class Caller:
    """Runs coroutines on the gateway's event loop for a test body in a worker thread."""

    loop: asyncio.AbstractEventLoop

    def __call__(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)


@dataclass
class Seen:
    """Everything a property needs across examples."""

    nonces: set[str] = field(default_factory=set)
    statuses: dict[str, set[int]] = field(default_factory=dict)

    def count(self, label: str, status: int) -> None:
        self.statuses.setdefault(label, set()).add(status)


def check_acme(response: AcmeResponse, seen: Seen, label: str) -> None:
    context = (label, response.status, response.text[:300])
    assert response.status < 500, context
    nonce = response.nonce
    assert nonce, ("every ACME answer carries a Replay-Nonce", *context)
    assert nonce not in seen.nonces, ("the Replay-Nonce is fresh", *context)
    seen.nonces.add(nonce)
    if response.status >= 400:
        assert response.content_type == PROBLEM, context
        document = json.loads(response.body)
        assert document["type"].startswith(ACME_ERROR), context
        assert document["status"] == response.status and document["detail"], context
    seen.count(label, response.status)


async def run_in_thread(edges: Edges, test: Callable[[Caller], None]) -> None:
    await asyncio.to_thread(test, Caller(asyncio.get_running_loop()))


# --- ACME --------------------------------------------------------------------------------------


@dataclass
class AcmeObjects:
    """An enrolled device's account with every kind of object, signed requests at hand."""

    session: AcmeSession
    urls: dict[str, str]


@pytest.fixture
async def acme_objects(edges: Edges, attestation_ca: AttestationCA) -> AsyncIterator[AcmeObjects]:
    device = SimulatedDevice(
        edges.directory_url,
        "C02E2E00001",
        LeafClaims.macos("C02E2E00001"),
        attestation_ca,
    )
    try:
        result = await device.enroll()
        assert result.ok, result.problems
        session = device.session
        pending = await session.post(
            await session.url_of("newOrder"),
            {"identifiers": [{"type": "permanent-identifier", "value": "C02E2E00002"}]},
        )
        order = pending.json_object()
        assert result.account_url and result.order_url and pending.location
        urls = {
            "newAccount": await session.url_of("newAccount"),
            "newOrder": await session.url_of("newOrder"),
            "revokeCert": await session.url_of("revokeCert"),
            "keyChange": await session.url_of("keyChange"),
            "account": result.account_url,
            "orders": result.account_url + "/orders",
            "order": result.order_url,
            "finalize": str(result.finalize_url),
            "authz": str(result.authorization_url),
            "challenge": str(result.challenge_url),
            "certificate": str(result.certificate_url),
            "pending order": pending.location,
            "pending finalize": order["finalize"],
            "pending authz": order["authorizations"][0],
        }
        authz = (await session.post_as_get(urls["pending authz"])).json_object()
        urls["pending challenge"] = authz["challenges"][0]["url"]
        yield AcmeObjects(session, urls)
    finally:
        await device.close()


async def test_signed_requests_with_generated_payloads_never_reach_a_5xx(
    edges: Edges, acme_objects: AcmeObjects
) -> None:
    session, urls = acme_objects.session, acme_objects.urls
    seen = Seen()

    def fuzz(call: Caller) -> None:
        @fuzz_settings(1000)
        @example(
            target="newOrder",
            payload=encoded(
                {"identifiers": [{"type": "permanent-identifier", "value": "C02E2E00002"}]}
            ),
            query={},
            overrides={},
            use_jwk=False,
        )
        @example(target="account", payload=b"", query={}, overrides={}, use_jwk=False)
        @given(
            target=st.sampled_from(sorted(urls)),
            payload=payloads,
            query=query_strings,
            overrides=header_overrides | st.just({}),
            use_jwk=st.booleans(),
        )
        def signed(
            target: str,
            payload: bytes,
            query: Mapping[str, str],
            overrides: Mapping[str, Any],
            use_jwk: bool,
        ) -> None:
            # The URL as the client sends it (percent-encoded) is the one it signs (§6.4).
            url = str(URL(urls[target]).with_query(query)) if query else urls[target]

            async def send() -> AcmeResponse:
                nonce = await session.take_nonce()
                body = session.sign(
                    url, payload, nonce=nonce, use_jwk=use_jwk, protected=dict(overrides)
                )
                return await session.post_raw(url, body)

            check_acme(call(send()), seen, target)

        signed()

    await run_in_thread(edges, fuzz)
    # The fuzzing went past authentication: handlers answered, not only the JWS checks.
    assert 200 in seen.statuses["account"] and 201 in seen.statuses.get("newOrder", set())


async def test_raw_requests_to_every_acme_path_never_reach_a_5xx(
    edges: Edges, acme_objects: AcmeObjects
) -> None:
    urls = {
        **acme_objects.urls,
        "directory": edges.directory_url,
        "newNonce": await acme_objects.session.url_of("newNonce"),
        "unknown": edges.acme_url + "/acme/nothing-here",
    }
    seen = Seen()
    bodies = st.one_of(
        payloads,
        st.fixed_dictionaries(
            {},
            optional={
                "protected": base64ish | json_values,
                "payload": base64ish | json_values,
                "signature": base64ish | json_values,
                "header": json_values,
                "signatures": json_values,
            },
        ).map(encoded),
    )

    def fuzz(call: Caller) -> None:
        @fuzz_settings(700)
        @given(
            target=st.sampled_from(sorted(urls)),
            method=st.sampled_from(["POST", "POST", "POST", "GET", "HEAD", "PUT", "DELETE"]),
            body=bodies,
            content_type=content_types,
            query=query_strings,
            extra=st.dictionaries(
                st.sampled_from(["Accept", "Accept-Language", "X-Forwarded-Proto", "Origin"]),
                header_text,
                max_size=2,
            ),
        )
        def raw(
            target: str,
            method: str,
            body: bytes,
            content_type: str,
            query: Mapping[str, str],
            extra: Mapping[str, str],
        ) -> None:
            url = str(URL(urls[target]).with_query(query)) if query else urls[target]
            headers = {**extra, "Content-Type": content_type}
            data = body if method not in ("GET", "HEAD") else None
            response = call(acme_objects.session.request(method, url, data=data, headers=headers))
            if method == "HEAD":
                # A HEAD answer has headers only: the status and the nonce still count.
                assert response.status < 500 and response.nonce not in seen.nonces
                assert response.nonce
                seen.nonces.add(response.nonce)
                return
            check_acme(response, seen, target)

        raw()

    await run_in_thread(edges, fuzz)


# --- admin --------------------------------------------------------------------------------------

ADMIN_OPERATIONS: list[tuple[str, str]] = [
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/certificate-authorities"),
    ("GET", "/api/v1/templates"),
    ("GET", "/api/v1/platforms"),
    ("GET", "/api/v1/platforms/{name}/profile"),
    ("POST", "/api/v1/platforms/{name}/token/rotate"),
    ("GET", "/api/v1/signal-sources"),
    ("POST", "/api/v1/signal-sources/{name}/validate"),
    ("GET", "/api/v1/lookup-policies"),
    ("POST", "/api/v1/lookup-policies/{name}/validate"),
    ("GET", "/api/v1/certificates"),
    ("GET", "/api/v1/certificates/{serial}"),
    ("POST", "/api/v1/certificates/{serial}/revoke"),
    ("GET", "/api/v1/enrollments"),
    ("GET", "/"),
    ("GET", "/dashboard"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("GET", "/api/v1/nothing-here"),
]
NAMES = ["jamf-macs", "inventory", "inventory-issuance", "radius-check", "nobody"]


async def test_every_admin_operation_answers_generated_input_with_a_4xx_document(
    edges: Edges,
) -> None:
    seen = Seen()
    admin_query = st.dictionaries(
        st.sampled_from(["device", "account", "ca", "status", "limit", "outcome", "x"]),
        st.text(max_size=20) | st.integers().map(str),
        max_size=3,
    )
    admin_bodies = st.one_of(
        payloads,
        st.fixed_dictionaries(
            {}, optional={"identity": json_values, "reason": json_values, "x": json_values}
        ).map(encoded),
        st.dictionaries(st.sampled_from(["token", "x"]), st.text(max_size=30), max_size=2).map(
            lambda form: "&".join(f"{k}={v}" for k, v in form.items()).encode()
        ),
    )

    def fuzz(call: Caller) -> None:
        http = call(_session())
        try:
            # Explicit cases make sure the operations are reached with the token and refused
            # without it, whatever the generated ones happen to be.
            @fuzz_settings(700)
            @certificates_listed(auth="token")
            @certificates_listed(auth="none")
            @given(
                operation=st.sampled_from(ADMIN_OPERATIONS),
                name=st.sampled_from(NAMES) | st.text(min_size=1, max_size=20),
                serial=st.sampled_from(["01", "ff" * 20]) | st.text(min_size=1, max_size=30),
                query=admin_query,
                body=admin_bodies,
                content_type=content_types,
                auth=st.sampled_from(["token", "token", "token", "none", "wrong"]),
            )
            def admin(
                operation: tuple[str, str],
                name: str,
                serial: str,
                query: Mapping[str, str],
                body: bytes,
                content_type: str,
                auth: str,
            ) -> None:
                method, template = operation
                path = template.replace("{name}", _segment(name)).replace(
                    "{serial}", _segment(serial)
                )
                url = URL(edges.admin_url + path, encoded=True).update_query(query)
                headers = {"Content-Type": content_type}
                if auth == "token":
                    headers["Authorization"] = f"Bearer {edges.admin_token}"
                elif auth == "wrong":
                    headers["Authorization"] = "Bearer not-the-token"
                status, kind, raw = call(
                    send(
                        http,
                        method,
                        str(url),
                        data=body if method == "POST" else None,
                        headers=headers,
                    )
                )
                context = (method, path, status, raw[:300])
                assert status < 500, context
                seen.count(template, status)
                if status < 400:
                    return
                if template == "/login":
                    assert kind == "text/html", context
                    return
                assert kind == PROBLEM, context
                assert json.loads(raw)["status"] == status, context

            admin()
        finally:
            call(http.close())

    await run_in_thread(edges, fuzz)
    # With the token, the operations were reached (not only refused at the door).
    assert 200 in seen.statuses["/api/v1/certificates"]
    assert 401 in seen.statuses["/api/v1/certificates"]


def certificates_listed(*, auth: str) -> example:
    """An explicit admin case: the certificate list, plainly asked, with ``auth``."""
    return example(
        operation=("GET", "/api/v1/certificates"),
        name="x",
        serial="01",
        query={},
        body=b"",
        content_type="",
        auth=auth,
    )


async def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession()


async def send(
    http: aiohttp.ClientSession, method: str, url: str, **kw: Any
) -> tuple[int, str, bytes]:
    """One request, redirects not followed: (status, content type, body)."""
    async with http.request(method, url, allow_redirects=False, **kw) as response:
        return response.status, response.content_type, await response.read()


def _segment(text: str) -> str:
    """``text`` as one percent-encoded path segment (never ``.`` or ``..``)."""
    quoted = URL.build(path="/" + text.replace("/", "_")).raw_path[1:]
    return quoted if quoted not in ("", ".", "..") else "x"


# --- RADIUS --------------------------------------------------------------------------------------


async def test_the_radius_endpoint_answers_generated_input_with_a_reply_message(
    edges: Edges,
) -> None:
    seen = Seen()
    attribute = st.sampled_from(
        [
            "TLS-Client-Cert-Serial",
            "TLS-Client-Cert-Issuer",
            "TLS-Client-Cert-Common-Name",
            "TLS-Client-Cert-Subject-Alt-Name-Dns",
            "request:User-Name",
            "certificate",
        ]
    ) | st.text(max_size=20)
    rlm_rest = st.dictionaries(
        attribute,
        json_values
        | st.fixed_dictionaries({"type": st.just("string"), "value": st.lists(json_scalars)}),
        max_size=4,
    ).map(encoded)
    pem_like = st.binary(max_size=200).map(
        lambda raw: (
            b"-----BEGIN CERTIFICATE-----\n"
            + b64url(raw).encode()
            + b"\n-----END CERTIFICATE-----\n"
        )
    )
    bodies = st.one_of(payloads, rlm_rest, pem_like)

    def fuzz(call: Caller) -> None:
        http = call(_session())
        try:

            @fuzz_settings(600)
            @example(body=b"", content_type="text/plain", token=edges.radius_token, health=False)
            @example(body=b"x", content_type="text/plain", token="", health=False)
            @given(
                body=bodies,
                content_type=content_types,
                token=st.sampled_from([edges.radius_token] * 4 + ["", "wrong"]),
                health=st.booleans(),
            )
            def radius(body: bytes, content_type: str, token: str, health: bool) -> None:
                headers = {"Content-Type": content_type}
                if token:
                    headers["Authorization"] = f"Bearer {token}"
                if health and not body:
                    status, _, raw = call(
                        send(http, "GET", f"{edges.radius_url}/radius/health", headers=headers)
                    )
                    assert status == 200, raw
                    return
                status, kind, raw = call(
                    send(
                        http,
                        "POST",
                        f"{edges.radius_url}/radius/authorize",
                        data=body,
                        headers=headers,
                    )
                )
                context = (status, kind, body[:200], raw[:300])
                assert status < 500, context
                seen.count("authorize", status)
                if status == 204:
                    return
                assert kind == "application/json", context
                assert json.loads(raw)["Reply-Message"].startswith("acmegate: "), context

            radius()
        finally:
            call(http.close())

    await run_in_thread(edges, fuzz)
    assert {400, 401} <= seen.statuses["authorize"]
