"""pebble-challtestsrv (Debian ``pebble``) as the tests' DNS server and challenge responder.

It answers every A query with 127.0.0.1 (AAAA: none), serves http-01 key authorizations,
TXT and CAA records and tls-alpn-01 certificates that its management API sets. It never says
NXDOMAIN, so :class:`NxdomainServer` is the tests' DNS server that says nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import dns.message
import dns.rcode

from tests.support.gateway import free_port

BINARY = "pebble-challtestsrv"


@dataclass
class ChallTestSrv:
    management_port: int
    dns_port: int
    http_port: int
    tls_alpn_port: int

    @property
    def nameserver(self) -> str:
        """The ``validation.resolver.nameservers`` entry that points at it."""
        return f"127.0.0.1:{self.dns_port}"

    async def _post(self, path: str, body: dict[str, Any]) -> None:
        url = f"http://127.0.0.1:{self.management_port}/{path}"
        async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
            assert response.status == 200, f"{path}: HTTP {response.status}"

    async def add_http01(self, token: str, content: str) -> None:
        await self._post("add-http01", {"token": token, "content": content})

    async def add_redirect(self, path: str, target: str) -> None:
        await self._post("add-redirect", {"path": path, "targetURL": target})

    async def set_txt(self, host: str, value: str) -> None:
        await self._post("set-txt", {"host": _fqdn(host), "value": value})

    async def add_caa(self, host: str, policies: list[dict[str, str]]) -> None:
        await self._post("add-caa", {"host": _fqdn(host), "policies": policies})

    async def add_tlsalpn01(self, host: str, key_authorization: str) -> None:
        await self._post("add-tlsalpn01", {"host": host, "content": key_authorization})

    async def set_servfail(self, host: str) -> None:
        await self._post("set-servfail", {"host": _fqdn(host)})


def _fqdn(host: str) -> str:
    return host if host.endswith(".") else host + "."


def available() -> bool:
    return shutil.which(BINARY) is not None


@contextlib.asynccontextmanager
async def running_challtestsrv() -> AsyncIterator[ChallTestSrv]:
    """A private pebble-challtestsrv on free loopback ports (stopped afterwards)."""
    server = ChallTestSrv(free_port(), free_port(), free_port(), free_port())
    process = await asyncio.create_subprocess_exec(
        BINARY,
        "-management",
        f"127.0.0.1:{server.management_port}",
        "-dns01",
        server.nameserver,
        "-http01",
        f"127.0.0.1:{server.http_port}",
        "-https01",
        "",
        "-tlsalpn01",
        f"127.0.0.1:{server.tls_alpn_port}",
        "-defaultIPv4",
        "127.0.0.1",
        "-defaultIPv6",
        "",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await _wait_for_port(server.management_port)
        yield server
    finally:
        process.terminate()
        await process.wait()


async def _wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return


class _Nxdomain(asyncio.DatagramProtocol):
    transport: asyncio.DatagramTransport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a datagram endpoint's

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        response.set_rcode(dns.rcode.NXDOMAIN)
        self.transport.sendto(response.to_wire(), addr)


@contextlib.asynccontextmanager
async def nxdomain_server() -> AsyncIterator[str]:
    """A DNS server (UDP, loopback) that answers NXDOMAIN to everything; yields its
    ``address:port``."""
    port = free_port()
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        _Nxdomain, local_addr=("127.0.0.1", port)
    )
    try:
        yield f"127.0.0.1:{port}"
    finally:
        transport.close()
