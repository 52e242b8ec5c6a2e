"""Fixtures for the test-kit tests: the device fixtures and a strict in-memory ACME stub."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from acmegate.testkit.apple_ca import AttestationCA
from tests.support.device_fixtures import attestation_ca, make_device
from tests.unit.testkit.acme_stub import AcmeStub, StubConfig

__all__ = ["StubFactory", "attestation_ca", "make_device", "start_stub"]

StubFactory = Callable[..., Awaitable[tuple[AcmeStub, str]]]
"""``await start_stub(**StubConfig knobs)`` → (stub, directory URL)."""


@pytest.fixture
async def start_stub(attestation_ca: AttestationCA) -> AsyncIterator[StubFactory]:
    """Start stub ACME servers trusting the session's attestation CA; closed afterwards."""
    servers: list[TestServer] = []

    async def start(**knobs: Any) -> tuple[AcmeStub, str]:
        stub = AcmeStub(StubConfig(trusted_root=attestation_ca.root, **knobs))
        server = TestServer(stub.app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return stub, str(server.make_url("/dir"))

    yield start
    for server in servers:
        await server.close()
