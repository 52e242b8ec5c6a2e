"""A device's certificate history in the admin API and the dashboard: a re-enrollment under
``previous_certificates: revoke`` shows the older certificate revoked as superseded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from acmegate.testkit.apple_ca import AttestationCA
from tests.e2e.admin.conftest import AdminGateway, admin_config
from tests.support.gateway import running_gateway

pytestmark = pytest.mark.e2e

SERIAL = "C02E2E00002"
POLICY = {
    "name": "managed-apple-devices",
    "role": "managed-devices",
    "device_role": "attested-apple",
    "certificate_authority": "devices",
    "certificate_template": "device",
    "previous_certificates": "revoke",
}


@pytest.fixture
async def superseding_admin(
    tmp_path: Path, attestation_ca: AttestationCA, database_url: str, admin_token: str
) -> AsyncIterator[AdminGateway]:
    files, url = admin_config(
        tmp_path / "gateway", attestation_ca, overrides={"enrollment_policies": [POLICY]}
    )
    async with running_gateway(files, database_url) as gateway:
        yield AdminGateway(gateway, url, admin_token)


async def history(admin: AdminGateway) -> list[dict[str, Any]]:
    status, body = await admin.get(f"/api/v1/devices/{SERIAL}/certificates")
    assert status == 200, body
    assert body["device_serial"] == SERIAL
    certificates: list[dict[str, Any]] = body["certificates"]
    return certificates


async def test_the_history_shows_the_superseded_certificate(
    superseding_admin: AdminGateway, attestation_ca: AttestationCA
) -> None:
    admin = superseding_admin
    first = await admin.enroll(attestation_ca, SERIAL)
    second = await admin.enroll(attestation_ca, SERIAL)
    assert first.ok and second.ok and first.certificate and second.certificate
    old, new = (format(r.certificate.serial_number, "x") for r in (first, second))  # type: ignore[union-attr]

    for _ in range(100):
        listed = await history(admin)
        if len(listed) == 2 and listed[1]["status"] == "revoked":
            break
        await asyncio.sleep(0.1)
    assert [(c["serial"], c["status"], c.get("revocation_reason")) for c in listed] == [
        (new, "valid", None),
        (old, "revoked", "superseded"),
    ]
    assert all(c["device_serial"] == SERIAL for c in listed)
    # Another device's history is its own.
    other = await admin.get("/api/v1/devices/C02E2E00001/certificates")
    assert other == (200, {"device_serial": "C02E2E00001", "certificates": []})
    status, problem = await admin.get("/api/v1/devices/bad%20serial/certificates")
    assert status == 400 and "device serial" in problem["detail"]

    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{admin.url}/dashboard/device", params={"serial": SERIAL}, headers=admin.headers
        ) as response,
    ):
        assert response.status == 200
        page = await response.text()
    assert f"device {SERIAL}" in page and old in page and new in page
    assert page.count('<tr class="certificate">') == 2 and ">superseded<" in page
