"""The Jamf Pro signal source against the fake Jamf Pro server (real HTTP, real tokens)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from acmegate.policy.sources import SourceUnavailable
from acmegate.policy.sources.jamf import JamfSource
from acmegate.policy.sources.jamf.http import USER_AGENT
from acmegate.testkit.fakejamf import FakeJamf
from tests.support.fake_jamf import (
    CLIENT_SECRET,
    DUPLICATE_SERIAL,
    MAC_SERIAL,
    MAC_UDID,
    PASSWORD,
    PHONE_SERIAL,
    UNMANAGED_SERIAL,
    AuthType,
    ManualClock,
    jamf_config,
    new_fake,
)
from tests.support.tls import self_signed

Start = Callable[..., Awaitable[tuple[FakeJamf, JamfSource]]]


class Sleeps:
    """Records backoff sleeps instead of sleeping."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Start]:
    """Start a fake (inventory changes optional) and a source on it; both closed afterwards."""
    opened: list[tuple[FakeJamf, JamfSource]] = []

    async def begin(
        changes: dict[str, Any] | None = None,
        *,
        auth: AuthType = "client_credentials",
        clock: ManualClock | None = None,
        sleep: Sleeps | None = None,
        **settings: Any,
    ) -> tuple[FakeJamf, JamfSource]:
        clock = clock or ManualClock()
        fake = new_fake(changes, clock=clock.time)
        await fake.start()
        config = jamf_config(fake.url, tmp_path / "secrets", auth=auth, **settings)
        source = JamfSource(config, monotonic=clock.monotonic, sleep=sleep or Sleeps())
        opened.append((fake, source))
        return fake, source

    yield begin
    for fake, source in opened:
        await source.close()
        await fake.stop()


def inventory_paths(fake: FakeJamf) -> list[str]:
    return [p for p in fake.stats.paths("/api/") if "inventory" in p or "mobile-devices" in p]


# --- finding devices --------------------------------------------------------------------------


@pytest.mark.parametrize("auth", ["client_credentials", "bearer_token"])
async def test_a_mac_is_found_with_mapped_attributes_and_only_the_configured_groups(
    start: Start, auth: AuthType
) -> None:
    fake, source = await start(auth=auth)
    record = await source.lookup(MAC_SERIAL, "serial_number", likely="computer")
    assert record is not None
    assert (record.serial_number, record.udid, record.managed) == (MAC_SERIAL, MAC_UDID, True)
    assert record.platform == "computer" and record.problem is None
    assert dict(record.attributes) == {
        "department": "Engineering",  # resolved from departmentId
        "email": "llama@example.com",
        "username": "llama",
        "site": "Zurich",
    }
    assert record.groups == ("Cert-Eligible",)  # not "All Managed Clients"
    # Only the computer inventory was asked, with only the sections the mapping needs.
    request = next(r for r in fake.stats.requests if "computers-inventory" in r.path)
    assert request.path == "/api/v4/computers-inventory"
    assert "section=GENERAL&section=GROUP_MEMBERSHIPS&section=USER_AND_LOCATION" in request.query
    assert "page-size=2" in request.query
    assert inventory_paths(fake) == ["/api/v4/computers-inventory"]


async def test_an_iphone_is_asked_for_first_when_the_attestation_says_so(start: Start) -> None:
    fake, source = await start()
    record = await source.lookup(PHONE_SERIAL, "serial_number", likely="mobile_device")
    assert record is not None and record.platform == "mobile_device"
    assert record.attributes["department"] == "Sales" and record.groups == ("Cert-Eligible",)
    assert inventory_paths(fake) == ["/api/v2/mobile-devices/detail"]


async def test_an_unlikely_guess_still_finds_the_device_in_the_other_inventory(
    start: Start,
) -> None:
    fake, source = await start()
    record = await source.lookup(PHONE_SERIAL, "serial_number", likely="computer")
    assert record is not None and record.platform == "mobile_device"
    assert inventory_paths(fake) == [
        "/api/v4/computers-inventory",
        "/api/v2/mobile-devices/detail",
    ]


async def test_unknown_unmanaged_and_ambiguous_devices(start: Start) -> None:
    _fake, source = await start()
    assert await source.lookup("C02NOSUCH000", "serial_number") is None
    unmanaged = await source.lookup(UNMANAGED_SERIAL, "serial_number")
    assert unmanaged is not None and unmanaged.managed is False and not unmanaged.passes
    twice = await source.lookup(DUPLICATE_SERIAL, "serial_number")
    assert twice is not None and not twice.managed
    assert (
        twice.problem == f"2 Jamf Pro computer records match serial {DUPLICATE_SERIAL} (ambiguous)"
    )


@pytest.mark.parametrize("value", ['C02"||id=ge=0', "C02 XK1", "C02;id==1", "", "x" * 65])
async def test_a_value_that_is_no_serial_never_reaches_a_filter(start: Start, value: str) -> None:
    fake, source = await start()
    assert await source.lookup(value, "serial_number") is None
    assert inventory_paths(fake) == []


async def test_a_udid_lookup_reads_the_serial_back(start: Start) -> None:
    fake, source = await start()
    record = await source.lookup(MAC_UDID, "udid")
    assert record is not None and record.serial_number == MAC_SERIAL
    request = next(r for r in fake.stats.requests if "computers-inventory" in r.path)
    assert "section=HARDWARE" in request.query and "udid%3D%3D" in request.query


async def test_a_dns_name_is_looked_up_by_its_first_label(start: Start) -> None:
    _, source = await start()
    record = await source.lookup(f"{MAC_SERIAL.lower()}.devices.example.com", "dns_name")
    assert record is not None and record.serial_number == MAC_SERIAL


async def test_every_request_names_acmegate(start: Start) -> None:
    fake, source = await start()
    await source.lookup(MAC_SERIAL, "serial_number")
    assert {r.user_agent for r in fake.stats.requests} == {USER_AGENT}


# --- caching ------------------------------------------------------------------------------------


async def test_a_passing_device_is_cached_and_fresh_lookups_ask_again(start: Start) -> None:
    fake, source = await start()
    first = await source.lookup(MAC_SERIAL, "serial_number")
    second = await source.lookup(MAC_SERIAL.lower(), "serial_number")
    assert first is not None and not first.from_cache
    assert second is not None and second.from_cache and second.attributes == first.attributes
    assert len(inventory_paths(fake)) == 1
    fresh = await source.lookup(MAC_SERIAL, "serial_number", fresh=True)
    assert fresh is not None and not fresh.from_cache
    assert len(inventory_paths(fake)) == 2


async def test_a_failing_answer_is_never_cached_and_evicts_the_cached_pass(start: Start) -> None:
    fake, source = await start()
    await source.lookup(UNMANAGED_SERIAL, "serial_number")
    await source.lookup(UNMANAGED_SERIAL, "serial_number")
    assert len(inventory_paths(fake)) == 2  # unmanaged: asked each time

    await source.lookup(MAC_SERIAL, "serial_number")  # cached pass
    fake.remove_device(MAC_SERIAL)
    assert await source.lookup(MAC_SERIAL, "serial_number", fresh=True) is None
    fake.reset_stats()
    # The fresh "unknown" evicted the pass: the next ordinary lookup asks Jamf again.
    assert await source.lookup(MAC_SERIAL, "serial_number") is None
    assert inventory_paths(fake) != []


async def test_no_stale_answer_when_jamf_is_down_after_the_cache_expired(start: Start) -> None:
    clock = ManualClock()
    fake, source = await start(clock=clock, cache="30s")
    assert await source.lookup(MAC_SERIAL, "serial_number") is not None
    fake.faults.error_rate = 1.0
    # Within the TTL the pass is served without Jamf...
    assert (await source.lookup(MAC_SERIAL, "serial_number")) is not None
    clock.advance(31)
    # ...after it, Jamf down means unavailable, never the stale pass.
    with pytest.raises(SourceUnavailable, match="Jamf Pro server error"):
        await source.lookup(MAC_SERIAL, "serial_number")


async def test_department_names_are_cached_apart(start: Start) -> None:
    fake, source = await start(cache=0)
    await source.lookup(MAC_SERIAL, "serial_number")
    await source.lookup(MAC_SERIAL, "serial_number")
    assert fake.stats.paths("/api/v1/departments") == ["/api/v1/departments/1"]
    assert len(inventory_paths(fake)) == 2  # cache 0: every lookup asks Jamf


# --- API versions and token paths --------------------------------------------------------------


async def test_an_older_jamf_is_searched_on_the_newest_version_it_has(start: Start) -> None:
    fake, source = await start({"computer_inventory_versions": [1, 2]}, cache=0)
    await source.lookup(MAC_SERIAL, "serial_number")
    await source.lookup(MAC_SERIAL, "serial_number")
    assert inventory_paths(fake) == [
        "/api/v4/computers-inventory",
        "/api/v3/computers-inventory",
        "/api/v2/computers-inventory",
        "/api/v2/computers-inventory",  # remembered
    ]


async def test_the_oauth_token_path_falls_back_to_v1_and_is_remembered(start: Start) -> None:
    clock = ManualClock()
    fake, source = await start({"oauth_paths": ["/api/v1/oauth/token"]}, clock=clock, cache=0)
    await source.lookup(MAC_SERIAL, "serial_number")
    clock.advance(600)
    await source.lookup(MAC_SERIAL, "serial_number")
    assert fake.stats.paths("/api/oauth") + fake.stats.paths("/api/v1/oauth") == [
        "/api/oauth/token",
        "/api/v1/oauth/token",
        "/api/v1/oauth/token",
    ]
    assert [r.status for r in fake.stats.requests if "oauth" in r.path] == [404, 200, 200]


# --- tokens -----------------------------------------------------------------------------------


async def test_an_access_token_is_renewed_before_it_expires(start: Start) -> None:
    clock = ManualClock()
    fake, source = await start({"client_token_lifetime": 60}, clock=clock, cache=0)
    await source.lookup(MAC_SERIAL, "serial_number")
    clock.advance(30)
    await source.lookup(MAC_SERIAL, "serial_number")
    assert len(fake.tokens.events("issued")) == 1  # still fresh
    clock.advance(20)  # 9 s left of 59: within the margin of a fifth of the lifetime
    await source.lookup(MAC_SERIAL, "serial_number")
    assert len(fake.tokens.events("issued")) == 2
    assert fake.tokens.events("rejected") == []  # renewed before Jamf had to refuse it


async def test_a_user_token_is_kept_alive_near_expiry_and_invalidated_on_close(
    start: Start,
) -> None:
    clock = ManualClock()
    fake, source = await start(
        {"user_token_lifetime": 100}, auth="bearer_token", clock=clock, cache=0
    )
    await source.lookup(MAC_SERIAL, "serial_number")
    clock.advance(85)
    await source.lookup(MAC_SERIAL, "serial_number")
    assert [e.event for e in fake.tokens.log] == ["issued", "kept-alive", "issued"]
    await source.close()
    assert fake.tokens.log[-1].event == "invalidated"


async def test_a_token_expiring_mid_run_is_renewed_with_one_retry(start: Start) -> None:
    fake, source = await start(cache=0)
    assert await source.lookup(MAC_SERIAL, "serial_number") is not None
    fake.expire_tokens()
    assert await source.lookup(MAC_SERIAL, "serial_number") is not None
    assert [e.event for e in fake.tokens.log] == [
        "issued",
        "expired-by-fault",
        "rejected",
        "issued",
    ]


# --- Jamf down or slow ---------------------------------------------------------------------


async def test_5xx_answers_are_retried_with_backoff(start: Start) -> None:
    sleeps = Sleeps()
    fake, source = await start(sleep=sleeps, retries=2)
    await source.lookup(MAC_SERIAL, "serial_number")  # token in hand
    fake.faults.fail_next = 2
    assert await source.lookup(PHONE_SERIAL, "serial_number", likely="mobile_device")
    # Exponential backoff with jitter: 0.25 s then 0.5 s, each ±50 %.
    assert len(sleeps.slept) == 2
    assert 0.125 <= sleeps.slept[0] <= 0.375 and 0.25 <= sleeps.slept[1] <= 0.75
    fake.faults.fail_next = 3
    with pytest.raises(SourceUnavailable) as caught:
        await source.lookup("C02JAMF0002", "serial_number")
    assert "Jamf Pro server error" in str(caught.value) and "503" in str(caught.value)
    assert caught.value.source == "jamf"


async def test_a_slow_jamf_times_out_as_unavailable(start: Start) -> None:
    fake, source = await start(timeout="1s", retries=0)
    fake.faults.delay = 1.6
    with pytest.raises(SourceUnavailable, match="timed out"):
        await source.lookup(MAC_SERIAL, "serial_number")


async def test_the_client_never_opens_more_than_five_connections(start: Start) -> None:
    fake, source = await start({"client_token_lifetime": 600}, cache=0)
    fake.faults.delay = 0.05
    serials = [MAC_SERIAL, PHONE_SERIAL, UNMANAGED_SERIAL, "C02JAMF0002", "C02NOSUCH000"] * 8
    await asyncio.gather(*(source.lookup(s, "serial_number") for s in serials))
    assert fake.stats.max_in_flight == 5
    assert fake.stats.max_connections <= 5 and fake.stats.over_limit == 0


async def test_a_lower_connection_cap_is_kept(start: Start) -> None:
    fake, source = await start(cache=0, max_connections=2)
    fake.faults.delay = 0.05
    await asyncio.gather(*(source.lookup(MAC_SERIAL, "serial_number") for _ in range(10)))
    assert fake.stats.max_in_flight <= 2 and fake.stats.max_connections <= 2


# --- "Validate" ----------------------------------------------------------------------------


async def test_validate_says_ok_with_the_jamf_version(start: Start) -> None:
    _, source = await start()
    report = await source.validate()
    assert report.ok, report.detail
    assert report.detail.startswith("OK: Jamf Pro 11.30.1-t1718745216 at http://127.0.0.1:")
    assert "client credentials" in report.detail


async def test_validate_names_bad_credentials_without_the_secret(start: Start) -> None:
    fake, source = await start()
    fake.inventory.api_clients[0].client_secret = "rotated"
    report = await source.validate()
    assert not report.ok
    assert report.detail.startswith("bad credentials: Jamf Pro refused API client")
    assert CLIENT_SECRET not in report.detail


async def test_validate_names_a_bad_user_password_without_it(start: Start) -> None:
    fake, source = await start(auth="bearer_token")
    fake.inventory.users[0].password = "rotated"
    report = await source.validate()
    assert report.detail.startswith("bad credentials: Jamf Pro refused user 'acmegate-api'")
    assert PASSWORD not in report.detail


async def test_validate_names_a_missing_privilege(start: Start) -> None:
    fake, source = await start()
    fake.inventory.api_clients[0].privileges = ["Read Computers", "Read Departments"]
    report = await source.validate()
    assert report.detail == (
        "missing privilege: GET /api/v2/mobile-devices/detail answered 403: "
        "the API role needs 'Read Mobile Devices'"
    )


async def test_validate_names_a_timeout_within_one_attempt(start: Start) -> None:
    fake, source = await start(timeout="1s", retries=3)
    fake.faults.delay = 1.5
    report = await source.validate()
    assert report.detail == "timed out: POST /api/oauth/token got no answer within 1s"
    assert len(fake.stats.requests) <= 1  # Validate does not retry


async def test_validate_names_a_refused_connection_and_a_failed_name_resolution(
    tmp_path: Path,
) -> None:
    for url, expected in (
        ("http://127.0.0.1:9", "cannot connect: cannot connect to 127.0.0.1:9"),
        ("https://jamf.invalid", "name resolution failed: cannot resolve jamf.invalid"),
    ):
        source = JamfSource(jamf_config(url, tmp_path, retries=0))
        try:
            report = await source.validate()
        finally:
            await source.close()
        assert report.detail.startswith(expected), report.detail


async def test_tls_to_an_untrusted_jamf_fails_and_its_ca_bundle_makes_it_work(
    tmp_path: Path,
) -> None:
    cert, key = self_signed(tmp_path, "jamf")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    fake = new_fake()
    url = await fake.start(ssl_context=context)
    try:
        untrusting = JamfSource(jamf_config(url, tmp_path, retries=0))
        trusting = JamfSource(jamf_config(url, tmp_path, ca_bundle=str(cert)))
        try:
            refused = await untrusting.validate()
            accepted = await trusting.validate()
        finally:
            await untrusting.close()
            await trusting.close()
    finally:
        await fake.stop()
    assert refused.detail.startswith("TLS failed: 127.0.0.1:"), refused.detail
    assert "certificate" in refused.detail
    assert accepted.ok, accepted.detail
