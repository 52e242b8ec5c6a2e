"""Fixtures of the server-certificate tests: a private pebble-challtestsrv as DNS server and
challenge responder, and a gateway whose validation points at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from acmegate.testkit.apple_ca import AttestationCA
from tests.support import challtestsrv
from tests.support.challtestsrv import ChallTestSrv, running_challtestsrv
from tests.support.gateway import Gateway, GatewayFiles, gateway_config, running_gateway
from tests.support.server_certs import add_server_policy

if not challtestsrv.available():  # pragma: no cover - CI installs Debian's pebble
    pytest.fail("pebble-challtestsrv is not installed (Debian package `pebble`)")


@pytest.fixture
async def responder() -> AsyncIterator[ChallTestSrv]:
    async with running_challtestsrv() as server:
        yield server


@pytest.fixture
def server_files(
    tmp_path: Path, attestation_ca: AttestationCA, responder: ChallTestSrv
) -> GatewayFiles:
    files = gateway_config(tmp_path / "gateway", attestation_ca)
    add_server_policy(files.config_path, responder)
    return files


@pytest.fixture
async def server_gateway(server_files: GatewayFiles, database_url: str) -> AsyncIterator[Gateway]:
    async with running_gateway(server_files, database_url) as running:
        yield running
