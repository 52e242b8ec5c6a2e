"""The static inventory: inline devices or a YAML file, re-read when the file changes."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from acmegate.common.config import Secret
from acmegate.common.config.model import (
    ClientCredentialsAuth,
    InventoryDevice,
    JamfSourceConfig,
    StaticSourceConfig,
)
from acmegate.policy.sources import (
    InventoryError,
    SourceUnavailable,
    StaticSource,
    build_source,
)
from acmegate.policy.sources.jamf import JamfSource

FIRST = """
- serial_number: C02FIRST0001
  udid: 00008103-AAAA
  attributes: {department: IT, dns_name: Mac-1.Corp.Example.com}
  groups: [Cert-Eligible]
"""
SECOND = """
- serial_number: C02SECOND002
  managed: false
"""


def write(path: Path, text: str) -> None:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    # Make each rewrite visible even on file systems with coarse timestamps.
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def source_for(path: Path, devices: list[InventoryDevice] | None = None) -> StaticSource:
    return StaticSource(StaticSourceConfig(name="inventory", file=str(path), devices=devices or []))


async def test_devices_are_found_by_exact_serial_udid_or_dns_name(tmp_path: Path) -> None:
    write(tmp_path / "devices.yaml", FIRST)
    source = source_for(tmp_path / "devices.yaml")
    record = await source.lookup("C02FIRST0001", "serial_number")
    assert record is not None
    assert record.managed and record.udid == "00008103-AAAA"
    assert record.attributes["department"] == "IT" and list(record.groups) == ["Cert-Eligible"]
    assert await source.lookup("00008103-AAAA", "udid") == record
    # DNS names compare without case (RFC 4343); Apple's identifiers do not.
    assert await source.lookup("mac-1.corp.example.com.", "dns_name") == record
    assert await source.lookup("c02first0001", "serial_number") is None
    assert await source.lookup("00008103-aaaa", "udid") is None


async def test_inline_devices_and_the_file_are_both_used(tmp_path: Path) -> None:
    write(tmp_path / "devices.yaml", FIRST)
    source = source_for(tmp_path / "devices.yaml", [InventoryDevice(serial_number="INLINE01")])
    assert await source.lookup("INLINE01", "serial_number") is not None
    assert await source.lookup("C02FIRST0001", "serial_number") is not None
    assert source.attribute_names == {"department", "dns_name"}


async def test_the_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "devices.yaml"
    write(path, FIRST)
    source = source_for(path)
    assert await source.lookup("C02SECOND002", "serial_number") is None
    write(path, FIRST + SECOND)
    record = await source.lookup("C02SECOND002", "serial_number")
    assert record is not None and not record.managed
    write(path, SECOND)  # the first device was removed from the inventory
    assert await source.lookup("C02FIRST0001", "serial_number") is None


async def test_a_file_that_turns_invalid_makes_the_source_unavailable_until_fixed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "devices.yaml"
    write(path, FIRST)
    source = source_for(path)
    write(path, "- serial_number: 42\n")
    with pytest.raises(SourceUnavailable, match=r"\$\[0\].serial_number: Expected `str`"):
        await source.lookup("C02FIRST0001", "serial_number")
    with pytest.raises(SourceUnavailable):  # still broken: not re-parsed, same answer
        await source.lookup("C02FIRST0001", "serial_number")
    write(path, FIRST)
    assert await source.lookup("C02FIRST0001", "serial_number") is not None
    path.unlink()
    with pytest.raises(SourceUnavailable, match="No such file"):
        await source.lookup("C02FIRST0001", "serial_number")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- {serial_number: A, managed: perhaps}", "$[0].managed: Expected `bool`, got `str`"),
        ("- {serial_number: A, colour: red}", "$[0]: Object contains unknown field `colour`"),
        (
            "- {serial_number: A, attributes: {floor: 3}}",
            "$[0].attributes[...]: Expected `str`, got `int`",
        ),
        ("devices: []", "the top level must be a list of devices"),
        ("- [unclosed", "not valid YAML"),
        ("- {serial_number: A}\n- {serial_number: A}", "$[1]: duplicate serial number 'A'"),
        ("- {serial_number: ''}", "$[0].serial_number: must not be empty"),
    ],
)
def test_an_invalid_file_is_refused_naming_the_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "devices.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InventoryError) as raised:
        source_for(path)
    assert str(raised.value).startswith(f"{path}: ")
    assert message in str(raised.value)


def test_a_udid_listed_twice_inline_is_refused() -> None:
    config = StaticSourceConfig(
        name="inventory",
        devices=[
            InventoryDevice(serial_number="A", udid="U"),
            InventoryDevice(serial_number="B", udid="U"),
        ],
    )
    with pytest.raises(
        InventoryError, match=r"devices\[1\]: duplicate UDID 'U' \(also at devices\[0\]\)"
    ):
        StaticSource(config)


async def test_validate_reports_the_inventory_or_what_is_wrong(tmp_path: Path) -> None:
    path = tmp_path / "devices.yaml"
    write(path, FIRST + SECOND)
    source = source_for(path)
    report = await source.validate()
    assert report.ok and report.detail == f"2 devices (1 managed) from {path}"
    write(path, "oops: [")
    report = await source.validate()
    assert not report.ok and "not valid YAML" in report.detail


def test_the_factory_builds_static_and_jamf_sources() -> None:
    assert isinstance(build_source(StaticSourceConfig(name="s")), StaticSource)
    jamf = JamfSourceConfig(
        name="jamf",
        url="https://example.jamfcloud.com",
        auth=ClientCredentialsAuth(client_id="id", client_secret=Secret(env="JAMF_SECRET")),
    )
    # Built without connecting: Jamf is first contacted by a lookup or "Validate".
    assert isinstance(build_source(jamf), JamfSource)
