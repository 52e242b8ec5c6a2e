"""Batched Jamf lookups (docs/jamf.md "Batching") against the fake Jamf Pro over real HTTP."""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from acmegate.policy.sources import SourceUnavailable
from acmegate.policy.sources.base import DeviceRecord
from acmegate.policy.sources.jamf import JamfSource
from acmegate.testkit.fakejamf import FakeJamf
from tests.support.fake_jamf import (
    DUPLICATE_SERIAL,
    MAC2_SERIAL,
    MAC_SERIAL,
    NO_GROUP_SERIAL,
    PHONE_SERIAL,
    UNMANAGED_SERIAL,
    ManualClock,
    jamf_config,
    new_fake,
)

Start = Callable[..., Awaitable[tuple[FakeJamf, JamfSource]]]

# Known, unmanaged, outside the groups, duplicated, an iPhone, unknown; one in lower case.
SERIALS = [
    MAC_SERIAL,
    MAC2_SERIAL.lower(),
    UNMANAGED_SERIAL,
    NO_GROUP_SERIAL,
    DUPLICATE_SERIAL,
    PHONE_SERIAL,
    "C02NOSUCH000",
]


async def _no_sleep(_: float) -> None:
    return None


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Start]:
    opened: list[tuple[FakeJamf, JamfSource]] = []

    async def begin(changes: dict[str, Any] | None = None, **settings: Any) -> Any:
        clock = ManualClock()
        fake = new_fake(changes, clock=clock.time)
        await fake.start()
        config = jamf_config(fake.url, tmp_path / f"secrets{len(opened)}", **settings)
        source = JamfSource(config, monotonic=clock.monotonic, sleep=_no_sleep)
        opened.append((fake, source))
        return fake, source

    yield begin
    for fake, source in opened:
        await source.close()
        await fake.stop()


def _verdict(record: DeviceRecord | None) -> tuple[Any, ...] | None:
    if record is None:
        return None
    return (
        record.serial_number and record.serial_number.upper(),
        record.udid,
        record.managed,
        record.platform,
        record.groups,
        dict(record.attributes),
        record.problem,
        record.passes,
    )


def _filters(fake: FakeJamf, part: str) -> list[str]:
    return [
        urllib.parse.parse_qs(r.query)["filter"][0] for r in fake.stats.requests if part in r.path
    ]


async def test_concurrent_lookups_share_one_request_and_keep_every_verdict(start: Start) -> None:
    _, alone = await start(batch_size=0, cache=0)
    expected = [_verdict(await alone.lookup(s, "serial_number")) for s in SERIALS]
    fake, source = await start(cache=0, batch_window_ms=20)
    records = await asyncio.gather(*(source.lookup(s, "serial_number") for s in SERIALS))
    assert [_verdict(r) for r in records] == expected
    # Unknown, unmanaged, ambiguous, outside the groups: as a single lookup says.
    assert expected[6] is None
    assert expected[2] is not None and expected[2][2] is False
    assert expected[4] is not None and "2 Jamf Pro computer records" in str(expected[4][6])
    assert expected[0] is not None and expected[0][7] is True
    # One computers request for all seven, one mobile request for the five Macs did not hold.
    computers = _filters(fake, "computers-inventory")
    assert len(computers) == 1 and computers[0].startswith("hardware.serialNumber=in=(")
    assert all(s.upper() in computers[0].upper() for s in SERIALS)
    mobiles = _filters(fake, "mobile-devices")
    assert len(mobiles) == 1 and mobiles[0].startswith("serialNumber=in=(")


async def test_udid_lookups_are_batched_too(start: Start) -> None:
    fake, source = await start(cache=0, batch_window_ms=20)
    udids = ["00006030-000651690A84001C", "00006030-0001111122223333", "00006030-00000000DEAD"]
    records = await asyncio.gather(*(source.lookup(u, "udid") for u in udids))
    assert [r.serial_number if r else None for r in records] == [MAC_SERIAL, MAC2_SERIAL, None]
    assert _filters(fake, "computers-inventory")[0].startswith("udid=in=(")


async def test_a_failed_batch_fails_each_of_its_lookups(start: Start) -> None:
    fake, source = await start(cache=0, retries=0, batch_window_ms=20)
    await source.lookup(MAC_SERIAL, "serial_number")  # a token first: the batch fails alone
    fake.reset_stats()
    fake.faults.fail_next = 1
    outcomes = await asyncio.gather(
        *(source.lookup(s, "serial_number") for s in SERIALS[:4]), return_exceptions=True
    )
    assert all(isinstance(o, SourceUnavailable) for o in outcomes)
    assert len(_filters(fake, "computers-inventory")) == 1
    # Nothing of the failure sticks: the next lookups are answered.
    assert (await source.lookup(MAC_SERIAL, "serial_number")) is not None


async def test_an_answer_larger_than_one_page_falls_back_to_single_lookups(start: Start) -> None:
    fake, source = await start(cache=0, batch_window_ms=20)
    fake.faults.max_page_size = 2
    records = await asyncio.gather(
        *(source.lookup(s, "serial_number") for s in [MAC_SERIAL, DUPLICATE_SERIAL, MAC2_SERIAL])
    )
    assert [r.passes if r else None for r in records] == [True, False, True]
    assert records[1] is not None and "ambiguous" in str(records[1].problem)
    assert len(_filters(fake, "computers-inventory")) == 4  # the batch, then one each


async def test_batches_keep_to_five_requests_in_flight_and_the_size_cap(start: Start) -> None:
    computers = [
        {"id": str(1000 + i), "serial_number": f"C02BATCH{i:04d}", "udid": f"U-{i:04d}"}
        for i in range(120)
    ]
    fake, source = await start({"computers": computers}, cache=0, batch_size=10)
    fake.faults.delay = 0.05
    records = await asyncio.gather(
        *(source.lookup(c["serial_number"], "serial_number") for c in computers)
    )
    assert all(
        r is not None and r.serial_number == c["serial_number"]
        for r, c in zip(records, computers, strict=True)
    )
    filters = _filters(fake, "computers-inventory")
    assert len(filters) == 12  # 120 serials, 10 a request
    assert fake.stats.max_in_flight <= 5 and fake.stats.max_connections <= 5
    assert fake.stats.over_limit == 0


async def test_batching_off_asks_once_per_lookup(start: Start) -> None:
    fake, source = await start(cache=0, batch_size=0)
    await asyncio.gather(
        *(source.lookup(s, "serial_number", likely="computer") for s in SERIALS[:3])
    )
    assert all("==" in f for f in _filters(fake, "computers-inventory"))
    assert len(_filters(fake, "computers-inventory")) == 3
