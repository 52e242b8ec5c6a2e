"""Exposing the admin listener (issue #8): TLS of its own, a session cookie that is ``Secure``
whenever administrators reach it over https, and failed logins throttled per client address
(429 with ``Retry-After``)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from acmegate.frontend.service import FrontendService
from acmegate.testkit.apple_ca import AttestationCA
from tests.e2e.admin.conftest import TOKEN_ENV
from tests.support.gateway import free_port, gateway_config, running_gateway
from tests.support.tls import self_signed, trusting

pytestmark = pytest.mark.e2e


@contextlib.asynccontextmanager
async def admin_gateway(
    folder: Path, attestation_ca: AttestationCA, database_url: str, **admin: Any
) -> AsyncIterator[str]:
    """A gateway whose admin listener has ``admin`` settings; yields the admin URL."""
    port = free_port()
    files = gateway_config(
        folder,
        attestation_ca,
        overrides={
            "admin": {"host": "127.0.0.1", "port": port, "token": {"env": TOKEN_ENV}, **admin},
            "rate_limits": {"failed_admin_logins_per_ip": {"limit": 3, "period": "1h"}},
        },
    )
    async with running_gateway(files, database_url) as gateway:
        frontend = gateway.running.services["frontend"]
        assert isinstance(frontend, FrontendService) and frontend.admin_url is not None
        yield frontend.admin_url


def session_cookie(response: aiohttp.ClientResponse) -> Mapping[str, str]:
    """The attributes of the session cookie a response sets."""
    cookies = SimpleCookie()
    for header in response.headers.getall("Set-Cookie", []):
        cookies.load(header)
    morsel = cookies["acmegate_admin"]
    return {key: str(morsel[key]) for key in ("secure", "httponly", "samesite", "path")}


async def login(
    http: aiohttp.ClientSession, url: str, token: str, headers: Mapping[str, str] | None = None
) -> aiohttp.ClientResponse:
    async with http.post(
        f"{url}/login", data={"token": token}, headers=headers or {}, allow_redirects=False
    ) as response:
        await response.read()
        return response


@pytest.fixture
async def tls_admin(
    tmp_path: Path, attestation_ca: AttestationCA, database_url: str, admin_token: str
) -> AsyncIterator[tuple[str, Path]]:
    certificate, key = self_signed(tmp_path / "tls", "admin")
    tls = {"certificate": str(certificate), "key": str(key)}
    async with admin_gateway(tmp_path / "gw", attestation_ca, database_url, tls=tls) as url:
        yield url, certificate


async def test_with_admin_tls_the_listener_speaks_https_only(
    tls_admin: tuple[str, Path], admin_token: str
) -> None:
    url, certificate = tls_admin
    assert url.startswith("https://127.0.0.1:")
    connector = aiohttp.TCPConnector(ssl=trusting(certificate))
    async with aiohttp.ClientSession(connector=connector) as http:
        async with http.get(
            f"{url}/api/v1/certificate-authorities",
            headers={"Authorization": f"Bearer {admin_token}"},
        ) as response:
            assert response.status == 200
            assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
            assert response.headers["Server"] == "acmegate"
        logged_in = await login(http, url, admin_token)
        assert logged_in.status == 303
        assert session_cookie(logged_in) == {
            "secure": "True",
            "httponly": "True",
            "samesite": "Strict",
            "path": "/",
        }
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientError):
            async with http.get(url.replace("https:", "http:") + "/login") as response:
                await response.read()


async def test_an_https_admin_url_makes_the_cookie_secure_behind_a_tls_proxy(
    tmp_path: Path, attestation_ca: AttestationCA, database_url: str, admin_token: str
) -> None:
    async with admin_gateway(
        tmp_path / "gw", attestation_ca, database_url, external_url="https://admin.example.com"
    ) as url:
        async with aiohttp.ClientSession() as http:
            cookie = session_cookie(await login(http, url, admin_token))
            assert cookie["secure"] == "True" and cookie["samesite"] == "Strict"


async def test_a_trusted_proxy_saying_https_makes_the_cookie_secure(
    tmp_path: Path, attestation_ca: AttestationCA, database_url: str, admin_token: str
) -> None:
    forwarded = {"X-Forwarded-Proto": "https"}
    async with admin_gateway(
        tmp_path / "trusted", attestation_ca, database_url, trusted_proxies=["127.0.0.1"]
    ) as url:
        async with aiohttp.ClientSession() as http:
            secure = session_cookie(await login(http, url, admin_token, forwarded))
            plain = session_cookie(await login(http, url, admin_token))
            assert secure["secure"] == "True" and secure["httponly"] == "True"
            assert plain["secure"] == "" and plain["httponly"] == "True"
            async with http.get(f"{url}/login", headers=forwarded) as response:
                assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
            async with http.get(f"{url}/login") as response:
                assert "Strict-Transport-Security" not in response.headers
    # From a peer that is not a trusted proxy the header is just a claim.
    async with admin_gateway(tmp_path / "untrusted", attestation_ca, database_url) as url:
        async with aiohttp.ClientSession() as http:
            assert session_cookie(await login(http, url, admin_token, forwarded))["secure"] == ""


async def test_failed_logins_are_throttled_per_client_address(
    tmp_path: Path, attestation_ca: AttestationCA, database_url: str, admin_token: str
) -> None:
    async with admin_gateway(
        tmp_path / "gw", attestation_ca, database_url, trusted_proxies=["127.0.0.1"]
    ) as url:
        one = {"X-Forwarded-For": "203.0.113.5"}
        other = {"X-Forwarded-For": "203.0.113.6"}
        async with aiohttp.ClientSession() as http:
            # The login form: 401 twice, then the third failure in the hour is refused.
            statuses = [(await login(http, url, "wrong", one)).status for _ in range(3)]
            assert statuses == [401, 401, 429]
            async with http.post(
                f"{url}/login", data={"token": admin_token}, headers=one, allow_redirects=False
            ) as response:
                # Even the right token: the address is throttled (no oracle for guesses).
                assert response.status == 429
                assert response.content_type == "text/html"
                assert 1 <= int(response.headers["Retry-After"]) <= 1200
                assert "Too many failed logins" in await response.text()
                assert "Set-Cookie" not in response.headers

            async def api(token: str, headers: Mapping[str, str]) -> aiohttp.ClientResponse:
                async with http.get(
                    f"{url}/api/v1/certificate-authorities",
                    headers={"Authorization": f"Bearer {token}", **headers},
                ) as response:
                    await response.read()
                    return response

            refused = await api(admin_token, one)
            assert refused.status == 429
            assert refused.content_type == "application/problem+json"
            assert 1 <= int(refused.headers["Retry-After"]) <= 1200
            # Another address is not affected, and wrong bearer tokens count as failures too.
            assert (await api(admin_token, other)).status == 200
            statuses = [(await api("wrong", other)).status for _ in range(3)]
            assert statuses == [401, 401, 429]
            assert (await api(admin_token, other)).status == 429
