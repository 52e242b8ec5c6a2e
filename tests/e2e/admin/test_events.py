"""Enrollment events from real enrollments: one per finished enrollment, with its outcome,
the device, the platform and, for a failure, the reason the device was told."""

from __future__ import annotations

import plistlib

import aiohttp
import pytest

from acmegate.testkit.apple_ca import AttestationCA
from acmegate.testkit.device import DeviceMode, Stage
from tests.e2e.admin.conftest import AdminGateway

pytestmark = pytest.mark.e2e


async def events(admin: AdminGateway, **params: str) -> list[dict[str, object]]:
    status, body = await admin.get("/api/v1/enrollments", **params)
    assert status == 200, body
    result: list[dict[str, object]] = body["enrollments"]
    return result


async def test_an_issued_and_a_refused_enrollment_each_leave_one_event(
    admin: AdminGateway, attestation_ca: AttestationCA
) -> None:
    issued = await admin.enroll(attestation_ca, "C02E2E00001")
    assert issued.ok, issued.problems
    refused = await admin.enroll(attestation_ca, "C02UNMANAGED")
    assert refused.failed_stage is Stage.FINALIZE and refused.problem is not None

    completed, failed = (
        await events(admin, outcome="completed"),
        await events(admin, outcome="failed"),
    )
    assert len(completed) == 1 and len(failed) == 1
    [done], [bad] = completed, failed
    assert done["stage"] == "order" and done["device_serial"] == "C02E2E00001"
    assert done["certificate_serial"] == format(issued.certificate.serial_number, "x")
    assert done["order_id"] == issued.order_url.rsplit("/", 1)[1]
    assert done["reason"] is None and done["problem"] is None
    # The signer hands back why it issued: the policy, its template and the signal source.
    assert done["enrollment_policy"] == "managed-apple-devices"
    assert done["certificate_template"] == "device"
    assert done["signal_source"] == "inventory"
    assert bad["device_serial"] == "C02UNMANAGED" and bad["certificate_serial"] is None
    # The reason is what the device was told.
    assert bad["reason"] == refused.problem.detail
    assert bad["problem"]["kind"] == "rejectedIdentifier"  # type: ignore[index]


async def test_a_refused_attestation_is_a_failed_challenge_event(
    admin: AdminGateway, attestation_ca: AttestationCA
) -> None:
    refused = await admin.enroll(attestation_ca, "C02E2E00002", mode=DeviceMode.WRONG_ROOT)
    assert refused.failed_stage is Stage.CHALLENGE and refused.problem is not None
    [event] = await events(admin)
    assert event["outcome"] == "failed" and event["stage"] == "challenge"
    assert event["identifier"] == "C02E2E00002"
    assert event["problem"]["kind"] == "badAttestationStatement"  # type: ignore[index]
    assert event["reason"] == refused.problem.detail


async def test_a_token_enrollment_records_the_platform_but_not_the_token(
    admin: AdminGateway, attestation_ca: AttestationCA
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            admin.url + "/api/v1/platforms/jamf-macs/profile", headers=admin.headers
        ) as response,
    ):
        token = plistlib.loads(await response.read())["PayloadContent"][0]["ClientIdentifier"]
    assert (await admin.enroll(attestation_ca, "C02E2E00001", identifier=token)).ok
    [event] = await events(admin)
    assert event["platform"] == "jamf-macs" and event["device_serial"] == "C02E2E00001"
    assert event["identifier"] is None
    assert token not in str(event)
