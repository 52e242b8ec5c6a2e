"""The Jamf webhook receiver over real HTTP, with a Jamf source on the fake Jamf Pro."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer

from acmegate.common.config.model import JamfWebhooksConfig
from acmegate.policy.sources.jamf import JamfSource
from acmegate.policy.webhooks import TokenBucket, WebhookActions, parse, webhook_app
from acmegate.testkit.fakejamf import FakeJamf
from tests.support.fake_jamf import MAC2_SERIAL, MAC_SERIAL, MAC_UDID, jamf_config, new_fake

SECRET = "hook-s3cret"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def body(event: str, **fields: Any) -> bytes:
    return json.dumps({"webhook": {"id": 1, "webhookEvent": event}, "event": fields}).encode()


@pytest.fixture
async def jamf(tmp_path: Path) -> AsyncIterator[tuple[FakeJamf, JamfSource]]:
    fake = new_fake()
    await fake.start()
    source = JamfSource(jamf_config(fake.url, tmp_path / "secrets"))
    yield fake, source
    await source.close()
    await fake.stop()


async def client(
    tmp_path: Path, source: JamfSource, auth: dict[str, Any], clock: Clock | None = None
) -> TestClient[Any, Any]:
    (tmp_path / "hook").write_text(SECRET)
    auth = {
        **auth,
        **({"value" if auth["type"] == "header" else "password": {"file": str(tmp_path / "hook")}}),
    }
    config = msgspec.convert({"enabled": True, "auth": auth}, JamfWebhooksConfig)
    bucket = TokenBucket(2, 3, clock=clock) if clock else None
    app = webhook_app(config, WebhookActions({"jamf": source}, None), bucket=bucket)
    return TestClient(TestServer(app))


def test_payloads_name_devices_and_only_checkable_values() -> None:
    named = parse(body("ComputerInventoryCompleted", serialNumber=MAC_SERIAL, udid=MAC_UDID))
    assert named is not None and named.recheck and named.identities == (MAC_SERIAL, MAC_UDID)
    checkin = parse(body("ComputerCheckIn", computer={"serialNumber": MAC_SERIAL}))
    assert checkin is not None and not checkin.recheck and checkin.identities == (MAC_SERIAL,)
    group = parse(
        body(
            "SmartGroupComputerMembershipChange",
            groupRemovedDevices=[{"serialNumber": MAC2_SERIAL}],
            groupAddedDevicesIds=[],
            groupRemovedDevicesIds=[43, "x", -1],
        )
    )
    assert group is not None and group.identities == (MAC2_SERIAL,) and group.ids == ("43",)
    # A value that could not be a serial never reaches a filter.
    odd = parse(body("MobileDeviceUnEnrolled", serialNumber='A") or id=="1'))
    assert odd is not None and odd.identities == ()
    assert parse(body("PatchSoftwareTitleUpdated")) is None


async def test_basic_auth_is_required_and_a_webhook_drops_the_cached_lookup(
    tmp_path: Path, jamf: tuple[FakeJamf, JamfSource]
) -> None:
    _, source = jamf
    assert await source.lookup(MAC_SERIAL, "serial_number") is not None
    cached = await source.lookup(MAC_SERIAL, "serial_number")
    assert cached is not None and cached.from_cache
    async with await client(tmp_path, source, {"type": "basic", "username": "jamf"}) as http:
        hook = body("ComputerInventoryCompleted", serialNumber=MAC_SERIAL.lower())
        wrong = aiohttp.encode_basic_auth("jamf", "nope")
        response = await http.post(
            "/jamf/webhooks/jamf", data=hook, headers={"Authorization": wrong}
        )
        assert response.status == 401 and "Basic" in response.headers["WWW-Authenticate"]
        cached = await source.lookup(MAC_SERIAL, "serial_number")
        assert cached is not None and cached.from_cache  # nothing changed
        good = {"Authorization": aiohttp.encode_basic_auth("jamf", SECRET)}
        response = await http.post("/jamf/webhooks/jamf", data=hook, headers=good)
        assert response.status == 202
        fresh = await source.lookup(MAC_SERIAL, "serial_number")
        assert fresh is not None and not fresh.from_cache
        response = await http.post("/jamf/webhooks/jamf", data=b"{not json", headers=good)
        assert response.status == 400
        response = await http.post("/jamf/webhooks/jamf", data=b"x" * 70_000, headers=good)
        assert response.status == 413
        response = await http.post("/jamf/webhooks/other", data=hook, headers=good)
        assert response.status == 404


async def test_header_auth_and_the_rate_limit(
    tmp_path: Path, jamf: tuple[FakeJamf, JamfSource]
) -> None:
    _, source = jamf
    clock = Clock()
    auth = {"type": "header", "header": "X-Jamf-Token"}
    async with await client(tmp_path, source, auth, clock) as http:
        hook = body("ComputerAdded", serialNumber=MAC_SERIAL)
        response = await http.post("/jamf/webhooks/jamf", data=hook)
        assert response.status == 401
        headers = {"X-Jamf-Token": SECRET}
        statuses = [
            (await http.post("/jamf/webhooks/jamf", data=hook, headers=headers)).status
            for _ in range(4)
        ]
        assert statuses == [202, 202, 202, 429]
        clock.now += 1.0  # two more a second
        response = await http.post("/jamf/webhooks/jamf", data=hook, headers=headers)
        assert response.status == 202


async def test_smart_group_ids_are_resolved_through_jamf(jamf: tuple[FakeJamf, JamfSource]) -> None:
    _, source = jamf
    assert sorted(await source.identities_of("computer", ["42", "43", "9999"])) == sorted(
        [MAC_SERIAL, MAC_UDID, MAC2_SERIAL, "00006030-0001111122223333"]
    )
