"""pebble (Debian ``pebble``), Let's Encrypt's reference ACME server, as the peer server the
client tests also run against: a failure against both is the client's (or the test's), a
failure against acmegate alone is ours.

Its validation authority is real (``PEBBLE_VA_ALWAYS_VALID`` stays off): it resolves names
with the DNS server it is given (pebble-challtestsrv in the tests) and connects to the
``httpPort``/``tlsPort`` of its configuration. It generates a new root at every start; the
management interface serves it and the status of every certificate it issued.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from cryptography import x509

from tests.support.challtestsrv import ChallTestSrv
from tests.support.gateway import free_port
from tests.support.tls import self_signed

BINARY = "pebble"

# Pebble's knobs (its README, "Testing at full speed" and "Invalid Anti-Replay Nonce Errors"):
# no artificial validation delay, no deliberately rejected nonces (uacme and dehydrated do not
# retry badNonce), a fresh authorization for every order so renewals validate again.
ENVIRONMENT = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}


@dataclass
class Pebble:
    process_id: int | None
    port: int
    management_port: int
    tls_certificate: Path  # what its HTTPS listeners present (self-signed, for 127.0.0.1)

    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.tls_certificate))

    async def _get(self, path: str) -> tuple[int, str]:
        url = f"https://127.0.0.1:{self.management_port}{path}"
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, ssl=self._context()) as response,
        ):
            return response.status, await response.text()

    async def root_pem(self) -> str:
        """The root its certificates chain to (new at every start)."""
        status, text = await self._get("/roots/0")
        assert status == 200, f"pebble /roots/0: HTTP {status}"
        return text

    async def is_revoked(self, certificate: x509.Certificate) -> bool:
        status, text = await self._get(f"/cert-status-by-serial/{certificate.serial_number:x}")
        assert status == 200, f"pebble cert-status: HTTP {status}: {text}"
        return bool(json.loads(text)["Status"] == "Revoked")


def available() -> bool:
    return shutil.which(BINARY) is not None


@contextlib.asynccontextmanager
async def running_pebble(
    folder: Path, responder: ChallTestSrv | None, *, http_port: int, tls_port: int
) -> AsyncIterator[Pebble]:
    """A private pebble on free loopback ports that validates http-01 on ``http_port`` and
    tls-alpn-01 on ``tls_port`` and resolves names with ``responder``'s DNS server (the
    system's without one: enough for IP identifiers)."""
    pebble = _configure(folder, http_port, tls_port)
    log = (folder / "pebble.log").open("wb")
    dns = [] if responder is None else ["-dnsserver", responder.nameserver]
    process = await asyncio.create_subprocess_exec(
        BINARY,
        "-config",
        str(folder / "pebble.json"),
        *dns,
        stdout=log,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **ENVIRONMENT},
    )
    pebble.process_id = process.pid
    try:
        await _wait_until_serving(pebble, process)
        yield pebble
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
        log.close()


def _configure(folder: Path, http_port: int, tls_port: int) -> Pebble:
    """Its TLS certificate and configuration file in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    certificate, key = self_signed(folder, "pebble-tls")
    pebble = Pebble(None, free_port(), free_port(), certificate)
    config = {
        "pebble": {
            "listenAddress": f"127.0.0.1:{pebble.port}",
            "managementListenAddress": f"127.0.0.1:{pebble.management_port}",
            "certificate": str(certificate),
            "privateKey": str(key),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
    }
    (folder / "pebble.json").write_text(json.dumps(config))
    return pebble


async def _wait_until_serving(pebble: Pebble, process: asyncio.subprocess.Process) -> None:
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        try:
            status, _ = await pebble._get("/roots/0")
            if status == 200:
                return
        except aiohttp.ClientError:
            pass
        if process.returncode is not None or asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(f"pebble did not start (exit {process.returncode})")
        await asyncio.sleep(0.1)
