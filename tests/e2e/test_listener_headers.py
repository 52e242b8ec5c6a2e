"""What every listener says about itself (issue #8): ``Strict-Transport-Security`` on the ACME
listener when it is reached over https, and a ``Server`` header without any library version on
the ACME, admin, PKI, RADIUS and health listeners — on malformed requests too."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from aiohttp import http, web_response

from acmegate.common.health import HealthServer
from acmegate.frontend.service import FrontendService
from acmegate.policy.service import PolicyService
from acmegate.testkit.acme_session import AcmeSession
from acmegate.testkit.apple_ca import AttestationCA
from tests.e2e.admin.conftest import TOKEN_ENV
from tests.support.gateway import edge_overrides, free_port, gateway_config, running_gateway
from tests.support.tls import self_signed, trusting

pytestmark = pytest.mark.e2e

HSTS = "Strict-Transport-Security"


async def test_the_acme_listener_over_tls_sends_hsts(
    tmp_path: Path, attestation_ca: AttestationCA, database_url: str
) -> None:
    certificate, key = self_signed(tmp_path / "tls", "acme")
    port = free_port()
    files = gateway_config(
        tmp_path / "gw",
        attestation_ca,
        overrides={
            "server": {
                "host": "127.0.0.1",
                "port": port,
                "external_url": f"https://127.0.0.1:{port}",
                "tls": {"certificate": str(certificate), "key": str(key)},
            }
        },
    )
    connector = aiohttp.TCPConnector(ssl=trusting(certificate))
    async with (
        running_gateway(files, database_url),
        aiohttp.ClientSession(connector=connector) as http,
        AcmeSession(f"https://127.0.0.1:{port}/acme/directory", http=http) as acme,
    ):
        directory = await acme.request("GET", acme.directory_url)
        assert directory.status == 200
        assert directory.headers[HSTS] == "max-age=31536000"
        # Errors too (a problem document with its fresh nonce).
        created = await acme.new_account()
        assert created.headers[HSTS] == "max-age=31536000"
        missing = await acme.request("GET", f"https://127.0.0.1:{port}/acme/nothing-here")
        assert missing.status == 404 and missing.headers[HSTS] == "max-age=31536000"


async def test_a_plain_http_acme_listener_sends_no_hsts(
    tmp_path: Path, attestation_ca: AttestationCA, database_url: str
) -> None:
    files = gateway_config(tmp_path / "gw", attestation_ca)
    async with running_gateway(files, database_url), AcmeSession(files.directory_url) as acme:
        directory = await acme.request("GET", files.directory_url)
        assert directory.status == 200 and HSTS not in directory.headers


async def raw_server_header(port: int, request: bytes) -> tuple[bytes, str]:
    """Send ``request`` as is; the status line and ``Server`` header of the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    finally:
        writer.close()
    lines = head.decode("latin-1").split("\r\n")
    server = [line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("server:")]
    return lines[0].encode(), server[0] if server else ""


async def test_no_listener_names_a_library_version(
    tmp_path: Path,
    attestation_ca: AttestationCA,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "admin-token-of-the-header-test")
    folder = tmp_path / "gw"
    folder.mkdir()
    (folder / "radius-token").write_text("radius-token-of-the-header-test")
    admin_port, radius_port = free_port(), free_port()
    files = gateway_config(
        folder,
        attestation_ca,
        overrides=edge_overrides(admin_port, radius_port, TOKEN_ENV),
    )
    health_port = free_port()
    async with running_gateway(files, database_url) as gateway:
        frontend = gateway.running.services["frontend"]
        policy = gateway.running.services["policy"]
        assert isinstance(frontend, FrontendService) and frontend.admin_url is not None
        assert isinstance(policy, PolicyService) and policy.radius is not None
        health = HealthServer(gateway.running.runtime, "127.0.0.1", health_port)
        await health.start()
        try:
            listeners = {
                "acme": (files.port, "/acme/directory"),
                "admin": (admin_port, "/login"),
                "pki": (files.pki_port, "/ca/devices.cer"),
                "radius": (radius_port, "/radius/health"),
                "health": (health_port, "/healthz"),
            }
            # Each listener's application names itself, whatever aiohttp's default is (a
            # process may run one service only: `acmegate run signer`).
            with monkeypatch.context() as patched:
                patched.setattr(web_response, "SERVER_SOFTWARE", http.SERVER_SOFTWARE)
                for name, (port, path) in listeners.items():
                    good = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                    status, server = await raw_server_header(port, good.encode())
                    assert status.startswith(b"HTTP/1.1 "), (name, status)
                    assert server == "acmegate", (name, server)
            # Requests the HTTP parser refuses before any application sees them.
            for name, (port, _) in listeners.items():
                for bad in (
                    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
                    b"BREW\x00 / HTTP/1.1\r\n\r\n",
                ):
                    status, server = await raw_server_header(port, bad)
                    assert b" 400 " in status, (name, status)
                    assert server == "acmegate", (name, bad, server)
        finally:
            await health.stop()
