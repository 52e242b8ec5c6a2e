"""``acmegate platform publish``: the platform's profile into the fake Jamf Pro's Classic API
(create, update, dry run, a missing privilege), as an operator runs it (a real subprocess; the
fake Jamf Pro answers in this test's event loop)."""

from __future__ import annotations

import asyncio
import os
import plistlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from acmegate.testkit.apple_ca import AttestationCA
from acmegate.testkit.fakejamf import ALL_PRIVILEGES, FakeJamf
from tests.support.fake_jamf import CLIENT_SECRET, fake_jamf, jamf_overrides
from tests.support.gateway import GatewayFiles, gateway_config

pytestmark = pytest.mark.e2e
__all__ = ["fake_jamf"]  # the fixture, imported for this module

PROFILE_NAME = "Corp Wi-Fi (acmegate)"


async def acmegate(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI without blocking the loop the fake Jamf Pro answers on."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "acmegate.cli.main", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=60,
        check=False,
    )


def write_config(
    folder: Path, ca: AttestationCA, fake: FakeJamf, *, ssid: str = "Corp"
) -> GatewayFiles:
    platform: dict[str, Any] = {
        "name": "jamf-macs",
        "description": "Corporate Wi-Fi with an attested ACME identity",
        "profile": {
            # A Jamf variable, so building the profile needs no enrollment token (database).
            "client_identifier": "$SERIALNUMBER",
            "wifi": {"ssid": ssid, "trusted_server_names": ["radius.example.com"]},
        },
        "publish": {
            "source": "jamf",
            "name": PROFILE_NAME,
            "computer_groups": ["Cert-Eligible"],
            "mobile_device_groups": ["Cert-Eligible", "All Managed iPhones"],
        },
    }
    return gateway_config(
        folder,
        ca,
        overrides=jamf_overrides(fake.url, folder, device_management_platforms=[platform]),
    )


def wifi_of(payloads: str) -> dict[str, Any]:
    profile = plistlib.loads(payloads.encode())
    types = [p["PayloadType"] for p in profile["PayloadContent"]]
    assert types[0] == "com.apple.security.acme"
    return next(
        p for p in profile["PayloadContent"] if p["PayloadType"] == "com.apple.wifi.managed"
    )


async def publish(files: GatewayFiles, *extra: str) -> subprocess.CompletedProcess[str]:
    return await acmegate(
        "platform", "publish", "jamf-macs", "--config", str(files.config_path), *extra
    )


async def test_publish_creates_then_updates_the_same_profiles(
    tmp_path: Path, attestation_ca: AttestationCA, fake_jamf: FakeJamf
) -> None:
    folder = tmp_path / "gateway"
    files = write_config(folder, attestation_ca, fake_jamf)

    done = await publish(files)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        f"macOS configuration profile {PROFILE_NAME!r} (id 1): created",
        f"mobile device configuration profile {PROFILE_NAME!r} (id 2): created",
    ]
    mac = fake_jamf.profiles.profiles["osx"][1]
    phone = fake_jamf.profiles.profiles["mobiledevice"][2]
    assert mac.name == phone.name == PROFILE_NAME
    assert [g.name for g in mac.groups] == ["Cert-Eligible"]
    assert sorted(g.name for g in phone.groups) == ["All Managed iPhones", "Cert-Eligible"]
    assert wifi_of(mac.payloads)["SSID_STR"] == "Corp"
    # Unsigned: Jamf Pro signs what it pushes.
    assert mac.payloads.startswith("<?xml")
    assert CLIENT_SECRET not in done.stdout + done.stderr

    # Again, nothing changed: found by name, not created a second time.
    done = await publish(files)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        f"macOS configuration profile {PROFILE_NAME!r} (id 1): unchanged",
        f"mobile device configuration profile {PROFILE_NAME!r} (id 2): unchanged",
    ]

    # A new SSID: the dry run shows it and changes nothing ...
    files = write_config(folder, attestation_ca, fake_jamf, ssid="Corp-Secure")
    fake_jamf.reset_stats()
    done = await publish(files, "--dry-run")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"macOS configuration profile {PROFILE_NAME!r} (id 1): would be updated"
    assert "  -\t\t\t<string>Corp</string>" in lines
    assert "  +\t\t\t<string>Corp-Secure</string>" in lines
    assert {r.method for r in fake_jamf.stats.requests} <= {"GET", "POST"}
    assert all(r.method == "GET" for r in fake_jamf.stats.requests if "JSSResource" in r.path)
    assert wifi_of(fake_jamf.profiles.profiles["osx"][1].payloads)["SSID_STR"] == "Corp"

    # ... publishing updates the same two profiles, pushed again to every device in scope.
    done = await publish(files)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        f"macOS configuration profile {PROFILE_NAME!r} (id 1): updated",
        f"mobile device configuration profile {PROFILE_NAME!r} (id 2): updated",
    ]
    assert sorted(fake_jamf.profiles.profiles["osx"]) == [1]
    mac = fake_jamf.profiles.profiles["osx"][1]
    assert mac.updates == 1 and mac.redeploy_on_update == "All"
    assert wifi_of(mac.payloads)["SSID_STR"] == "Corp-Secure"


async def test_publish_without_the_create_privilege_says_which_one(
    tmp_path: Path, attestation_ca: AttestationCA, fake_jamf: FakeJamf
) -> None:
    fake_jamf.inventory.api_clients[0].privileges = [
        p for p in ALL_PRIVILEGES if p != "Create macOS Configuration Profiles"
    ]
    files = write_config(tmp_path / "gateway", attestation_ca, fake_jamf)
    done = await publish(files)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.startswith("publishing 'jamf-macs' to http://127.0.0.1:"), done.stdout
    assert (
        "missing privilege: POST /JSSResource/osxconfigurationprofiles/id/0 answered 403: "
        "the API role needs 'Read macOS Configuration Profiles', "
        "'Create macOS Configuration Profiles', 'Update macOS Configuration Profiles'"
    ) in done.stdout
    assert fake_jamf.profiles.profiles["osx"] == {}
    assert CLIENT_SECRET not in done.stdout + done.stderr

    # The dry run only reads: it works with the read privilege alone.
    done = await publish(files, "--dry-run")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"macOS configuration profile {PROFILE_NAME!r}: would be created" in done.stdout


async def test_publish_refuses_a_platform_without_a_publish_section(
    tmp_path: Path, attestation_ca: AttestationCA, fake_jamf: FakeJamf
) -> None:
    folder = tmp_path / "gateway"
    files = gateway_config(
        folder,
        attestation_ca,
        overrides=jamf_overrides(
            fake_jamf.url,
            folder,
            device_management_platforms=[
                {"name": "plain", "profile": {"client_identifier": "$SERIALNUMBER"}}
            ],
        ),
    )
    done = await acmegate("platform", "publish", "plain", "--config", str(files.config_path))
    assert done.returncode == 2
    assert "platform 'plain' has no `publish` section" in done.stderr
