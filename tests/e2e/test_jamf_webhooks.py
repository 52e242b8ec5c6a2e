"""Jamf Pro webhooks through the whole gateway (issue #16): a device unmanaged in Jamf, the
webhook arrives, its certificate is revoked (OCSP says so) within seconds; a webhook with a bad
secret is refused and changes nothing; a forged payload is never believed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from acmegate.testkit.apple_ca import AttestationCA, LeafClaims
from acmegate.testkit.device import EnrollmentResult, SimulatedDevice
from acmegate.testkit.fakejamf import FakeJamf
from tests.support.fake_jamf import (
    MAC2_SERIAL,
    MAC_SERIAL,
    MAC_UDID,
    fake_jamf,
    jamf_overrides,
)
from tests.support.gateway import Gateway, free_port, gateway_config, running_gateway

pytestmark = pytest.mark.e2e
__all__ = ["fake_jamf"]

WEBHOOK_USER = "jamf-webhooks"
WEBHOOK_PASSWORD = "webhook-pa55-DO-NOT-PRINT"


@contextlib.asynccontextmanager
async def opened(
    tmp_path: Path, attestation_ca: AttestationCA, database_url: str, fake_jamf: FakeJamf
) -> AsyncIterator[tuple[Gateway, str]]:
    folder = tmp_path / "gateway"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "webhook-password").write_text(WEBHOOK_PASSWORD)
    port = free_port()
    overrides = jamf_overrides(
        fake_jamf.url,
        folder,
        revoke_on_failure=True,
        # The periodic round is far away: only the webhook can revoke within the test.
        revocation_check={"enabled": True, "interval": "1h"},
        jamf_webhooks={
            "enabled": True,
            "port": port,
            "auth": {
                "type": "basic",
                "username": WEBHOOK_USER,
                "password": {"file": str(folder / "webhook-password")},
            },
        },
    )
    files = gateway_config(folder, attestation_ca, overrides=overrides)
    async with running_gateway(files, database_url) as gateway:
        yield gateway, f"http://127.0.0.1:{port}/jamf/webhooks/jamf"


async def enroll(gateway: Gateway, ca: AttestationCA, serial: str) -> EnrollmentResult:
    udid = MAC_UDID if serial == MAC_SERIAL else None
    device = SimulatedDevice(gateway.directory_url, serial, LeafClaims.macos(serial, udid), ca)
    try:
        result = await device.enroll()
    finally:
        await device.close()
    assert result.ok, result.problems
    return result


async def ocsp_status(result: EnrollmentResult) -> ocsp.OCSPCertStatus:
    leaf, issuer = x509.load_pem_x509_certificates((result.certificate_chain_pem or "").encode())[
        :2
    ]
    aia = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    url = next(d.access_location.value for d in aia if d.access_method._name == "OCSP")
    request = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, hashes.SHA1()).build()
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            url,
            data=request.public_bytes(serialization.Encoding.DER),
            headers={"Content-Type": "application/ocsp-request"},
        ) as response,
    ):
        assert response.status == 200
        answer = ocsp.load_der_ocsp_response(await response.read())
    return answer.certificate_status


def webhook(event: str, serial: str, udid: str = "") -> dict[str, Any]:
    return {
        "webhook": {
            "eventTimestamp": 1553550275590,
            "id": 7,
            "name": "acmegate",
            "webhookEvent": event,
        },
        "event": {"serialNumber": serial, "udid": udid, "jssID": 42, "deviceName": "x"},
    }


async def post(url: str, body: dict[str, Any], auth: tuple[str, str] | None) -> int:
    headers = {"Authorization": aiohttp.encode_basic_auth(*auth)} if auth else {}
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, json=body, headers=headers) as response,
    ):
        return response.status


async def until(check: Callable[[], Any], seconds: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {seconds}s")


GOOD = (WEBHOOK_USER, WEBHOOK_PASSWORD)


async def test_an_unmanaged_device_is_revoked_within_seconds_of_the_webhook(
    tmp_path: Path, attestation_ca: AttestationCA, database_url: str, fake_jamf: FakeJamf
) -> None:
    async with opened(tmp_path, attestation_ca, database_url, fake_jamf) as (gateway, url):
        mac = await enroll(gateway, attestation_ca, MAC_SERIAL)
        other = await enroll(gateway, attestation_ca, MAC2_SERIAL)
        assert await ocsp_status(mac) is ocsp.OCSPCertStatus.GOOD
        fake_jamf.set_managed(MAC_SERIAL, False)
        assert await post(url, webhook("ComputerInventoryCompleted", MAC_SERIAL), GOOD) == 202

        async def revoked() -> bool:
            return await ocsp_status(mac) is ocsp.OCSPCertStatus.REVOKED

        took = await until(revoked, 10)
        assert took < 10
        rows = await gateway.pool.fetch(
            "SELECT status, revocation_reason FROM pki.certificates WHERE device_serial = $1",
            MAC_SERIAL,
        )
        assert [(r["status"], r["revocation_reason"]) for r in rows] == [
            ("revoked", "privilegeWithdrawn")
        ]
        # The other Mac, still managed, keeps its certificate.
        assert await ocsp_status(other) is ocsp.OCSPCertStatus.GOOD


async def test_a_bad_secret_is_refused_and_a_forged_claim_changes_nothing(
    tmp_path: Path, attestation_ca: AttestationCA, database_url: str, fake_jamf: FakeJamf
) -> None:
    async with opened(tmp_path, attestation_ca, database_url, fake_jamf) as (gateway, url):
        mac = await enroll(gateway, attestation_ca, MAC_SERIAL)
        fake_jamf.set_managed(MAC_SERIAL, False)
        fake_jamf.reset_stats()
        unenrolled = webhook("ComputerInventoryCompleted", MAC_SERIAL)
        assert await post(url, unenrolled, (WEBHOOK_USER, "wrong")) == 401
        assert await post(url, unenrolled, None) == 401
        await asyncio.sleep(1.5)
        assert await ocsp_status(mac) is ocsp.OCSPCertStatus.GOOD
        assert fake_jamf.stats.paths("/api/v4/computers-inventory") == []  # nothing asked
        # Authenticated, but the device is managed again: the payload's word is not taken.
        fake_jamf.set_managed(MAC_SERIAL, True)
        assert await post(url, webhook("MobileDeviceUnEnrolled", MAC_SERIAL), GOOD) == 202
        assert await post(url, webhook("ComputerInventoryCompleted", MAC_SERIAL), GOOD) == 202
        await until(lambda: _asked(fake_jamf), 5)
        await asyncio.sleep(0.5)
        assert await ocsp_status(mac) is ocsp.OCSPCertStatus.GOOD
        # Malformed bodies are refused cleanly.
        assert await post(url, {"webhook": {}}, GOOD) == 400
        assert await post(url.removesuffix("/jamf") + "/nope", unenrolled, GOOD) == 404


async def _asked(fake: FakeJamf) -> bool:
    return bool(fake.stats.paths("/api/v4/computers-inventory"))
