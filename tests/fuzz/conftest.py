"""A whole gateway with every public edge open: ACME, the admin listener and RADIUS.

Hostile-input tests and the property-based fuzz test send what no honest client sends to each
of them and assert on what a client would see: a 4xx in the edge's documented error format,
never a 5xx.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from acmegate.testkit.apple_ca import AttestationCA
from tests.support.gateway import (
    Gateway,
    edge_overrides,
    free_port,
    gateway_config,
    running_gateway,
)

ADMIN_TOKEN_ENV = "ACMEGATE_TEST_FUZZ_ADMIN_TOKEN"


@dataclass
class Edges:
    """The running gateway and where each of its edges listens."""

    gateway: Gateway
    admin_url: str
    admin_token: str
    radius_url: str
    radius_token: str

    @property
    def directory_url(self) -> str:
        return self.gateway.directory_url

    @property
    def acme_url(self) -> str:
        return self.gateway.directory_url.removesuffix("/acme/directory")


@pytest.fixture
async def edges(
    tmp_path: Path,
    attestation_ca: AttestationCA,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Edges]:
    folder = tmp_path / "gateway"
    folder.mkdir(parents=True)
    admin_token = secrets.token_urlsafe(24)
    monkeypatch.setenv(ADMIN_TOKEN_ENV, admin_token)
    radius_token = secrets.token_urlsafe(24)
    (folder / "radius-token").write_text(radius_token)
    admin_port, radius_port = free_port(), free_port()
    files = gateway_config(
        folder,
        attestation_ca,
        overrides={
            **edge_overrides(admin_port, radius_port, ADMIN_TOKEN_ENV),
            # The fuzzing sends wrong tokens on purpose; with the failed-login throttle on,
            # the right token would soon get 429 too and the operations would go unreached.
            "rate_limits": {"failed_admin_logins_per_ip": None},
            "device_management_platforms": [
                {"name": "jamf-macs", "profile": {"subject": "CN=$SERIALNUMBER"}}
            ],
        },
    )
    async with running_gateway(files, database_url) as gateway:
        yield Edges(
            gateway,
            admin_url=f"http://127.0.0.1:{admin_port}",
            admin_token=admin_token,
            radius_url=f"http://127.0.0.1:{radius_port}",
            radius_token=radius_token,
        )
