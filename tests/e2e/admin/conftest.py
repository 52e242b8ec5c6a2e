"""A whole gateway with its admin listener (token from an environment variable), and helpers
to enroll simulated devices and call the admin API."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from acmegate.testkit.apple_ca import AttestationCA, LeafClaims
from acmegate.testkit.device import DeviceMode, EnrollmentResult, SimulatedDevice
from tests.support.gateway import Gateway, GatewayFiles, free_port, gateway_config, running_gateway

TOKEN_ENV = "ACMEGATE_TEST_ADMIN_TOKEN"


@dataclass
class AdminGateway:
    gateway: Gateway
    url: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def get(self, path: str, **params: Any) -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.url + path, headers=self.headers, params=params) as response,
        ):
            return response.status, await response.json(content_type=None)

    async def post(self, path: str, body: Any = None) -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.url + path, headers=self.headers, json=body) as response,
        ):
            return response.status, await response.json(content_type=None)

    async def enroll(
        self,
        ca: AttestationCA,
        serial: str,
        identifier: str | None = None,
        mode: DeviceMode = DeviceMode.GENUINE,
    ) -> EnrollmentResult:
        device = SimulatedDevice(
            self.gateway.directory_url,
            identifier or serial,
            LeafClaims.macos(serial),
            ca,
            subject=[("CN", serial)],
            mode=mode,
        )
        try:
            return await device.enroll()
        finally:
            await device.close()


def admin_config(
    folder: Path,
    attestation_ca: AttestationCA,
    *,
    namespace: str = "acmegate",
    overrides: dict[str, Any] | None = None,
) -> tuple[GatewayFiles, str]:
    """A gateway configuration with the admin listener and one token-style platform."""
    port = free_port()
    files = gateway_config(
        folder,
        attestation_ca,
        namespace=namespace,
        overrides={
            "admin": {"host": "127.0.0.1", "port": port, "token": {"env": TOKEN_ENV}},
            # The OpenAPI fuzz test presents wrong tokens by design; the throttling of failed
            # logins has tests of its own (test_exposure.py).
            "rate_limits": {"failed_admin_logins_per_ip": {"limit": 100000, "period": "1h"}},
            "device_management_platforms": [
                {
                    "name": "jamf-macs",
                    "description": "Jamf Pro Macs",
                    "profile": {"subject": "CN=$SERIALNUMBER,O=Example"},
                }
            ],
            **(overrides or {}),
        },
    )
    return files, f"http://127.0.0.1:{port}"


@pytest.fixture
def admin_token(monkeypatch: pytest.MonkeyPatch) -> str:
    token = secrets.token_urlsafe(24)
    monkeypatch.setenv(TOKEN_ENV, token)
    return token


@pytest.fixture
async def admin(
    tmp_path: Path, attestation_ca: AttestationCA, database_url: str, admin_token: str
) -> AsyncIterator[AdminGateway]:
    files, url = admin_config(tmp_path / "gateway", attestation_ca)
    async with running_gateway(files, database_url) as gateway:
        yield AdminGateway(gateway, url, admin_token)
