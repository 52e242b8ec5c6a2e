"""Fixtures of the real-client tests: every test runs against acmegate and against pebble
(the reference server), each resolving names with a private pebble-challtestsrv (its A
records all say 127.0.0.1) and validating http-01 and tls-alpn-01 on free ports where the
client under test listens."""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509

from acmegate.testkit.apple_ca import AttestationCA
from tests.conftest import fresh_database
from tests.support import challtestsrv, pebble
from tests.support.acme_clients import AcmeServer, ocsp_revoked
from tests.support.challtestsrv import ChallTestSrv, running_challtestsrv
from tests.support.gateway import free_port, gateway_config, running_gateway
from tests.support.server_certs import add_server_policy

# The Debian packages `pebble`, `certbot`, `lego`, `uacme` and `dehydrated`: CI installs them
# and sets ACMEGATE_REQUIRE_ACME_CLIENTS=1 so that this tier runs there, never skips.
_MISSING = [
    tool for tool in ("certbot", "lego", "uacme", "dehydrated") if shutil.which(tool) is None
] + ([] if challtestsrv.available() and pebble.available() else ["pebble"])


@pytest.fixture(autouse=True)
def _clients_installed() -> None:
    if not _MISSING:
        return
    reason = f"ACME clients not installed: {', '.join(_MISSING)} (Debian packages)"
    if os.environ.get("ACMEGATE_REQUIRE_ACME_CLIENTS"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
async def responder() -> AsyncIterator[ChallTestSrv]:
    async with running_challtestsrv() as server:
        yield server


@pytest.fixture(params=["acmegate", "pebble"])
async def acme_server(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    responder: ChallTestSrv,
    attestation_ca: AttestationCA,
    postgres_url: str,
) -> AsyncIterator[AcmeServer]:
    http_port, tls_port = free_port(), free_port()
    if request.param == "pebble":
        async with pebble.running_pebble(
            tmp_path / "pebble", responder, http_port=http_port, tls_port=tls_port
        ) as peer:
            root = tmp_path / "pebble" / "root.pem"
            root.write_text(await peer.root_pem())

            async def pebble_revoked(certificate: x509.Certificate, _: Path) -> bool:
                return await peer.is_revoked(certificate)

            yield AcmeServer(
                "pebble", peer.directory_url, root, http_port, tls_port, responder,
                peer.tls_certificate, pebble_revoked,
            )  # fmt: skip
        return
    # acmegate: the e2e tier's gateway (all services in this process, real PostgreSQL) with
    # a server policy for *.example.test, validating on the client's ports.
    files = gateway_config(tmp_path / "gateway", attestation_ca)
    validation = {"http_port": http_port, "tls_alpn_port": tls_port}
    add_server_policy(files.config_path, responder, validation=validation)
    async with fresh_database(postgres_url) as database, running_gateway(files, database):
        revoked = functools.partial(ocsp_revoked, issuer=files.ca_pem, root=files.root_pem)

        async def gateway_revoked(certificate: x509.Certificate, folder: Path) -> bool:
            return await revoked(certificate, folder=folder)

        yield AcmeServer(
            "acmegate", files.directory_url, files.root_pem, http_port, tls_port, responder,
            None, gateway_revoked,
        )  # fmt: skip
