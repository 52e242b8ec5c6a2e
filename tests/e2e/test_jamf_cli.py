"""The Jamf commands as an operator runs them: ``signal-source validate``, ``lookup validate``
and ``fake-jamf`` (real subprocesses; the fake Jamf Pro runs in this test's event loop)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from acmegate.testkit.apple_ca import AttestationCA
from acmegate.testkit.fakejamf import FakeJamf
from tests.support.fake_jamf import (
    CLIENT_SECRET,
    MAC_SERIAL,
    UNMANAGED_SERIAL,
    fake_jamf,
    jamf_overrides,
)
from tests.support.gateway import GatewayFiles, free_port, gateway_config

pytestmark = pytest.mark.e2e
__all__ = ["fake_jamf"]  # the fixture, imported for this module

EXAMPLE_INVENTORY = (
    Path(__file__).resolve().parents[2]
    / "libs/testkit/src/acmegate/testkit/fakejamf/example_inventory.yaml"
)


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


@pytest.fixture
def files(tmp_path: Path, attestation_ca: AttestationCA, fake_jamf: FakeJamf) -> GatewayFiles:
    folder = tmp_path / "gateway"
    return gateway_config(
        folder,
        attestation_ca,
        overrides=jamf_overrides(fake_jamf.url, folder, auth="client_credentials"),
    )


async def test_signal_source_validate_says_ok_with_the_jamf_version(files: GatewayFiles) -> None:
    done = await acmegate("signal-source", "validate", "jamf", "--config", str(files.config_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("signal source 'jamf': OK: Jamf Pro 11.30.1-t1718745216 at")
    assert CLIENT_SECRET not in done.stdout + done.stderr


async def test_signal_source_validate_says_what_failed_and_never_the_secret(
    files: GatewayFiles, fake_jamf: FakeJamf
) -> None:
    fake_jamf.inventory.api_clients[0].client_secret = "rotated-in-jamf"
    done = await acmegate("signal-source", "validate", "jamf", "--config", str(files.config_path))
    assert done.returncode == 1
    assert done.stdout.startswith(
        "signal source 'jamf': FAILED: bad credentials: Jamf Pro refused API client "
        "'acmegate-gateway' (HTTP 401 invalid_client)"
    )
    assert CLIENT_SECRET not in done.stdout + done.stderr

    done = await acmegate("signal-source", "validate", "nope", "--config", str(files.config_path))
    assert done.returncode == 2 and "no signal source named 'nope'" in done.stderr


async def test_lookup_validate_prints_attributes_and_groups_or_why_it_failed(
    files: GatewayFiles,
) -> None:
    config = str(files.config_path)
    done = await acmegate(
        "lookup", "validate", "jamf-issuance", "--identity", MAC_SERIAL, "--config", config
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        "Account validation succeeded.",
        "  lookup policy: jamf-issuance (signal source 'jamf')",
        f"  identity: {MAC_SERIAL}",
        "  managed: yes",
        "  attributes:",
        "    department: Engineering",
        "    email: llama@example.com",
        "    site: Zurich",
        "    username: llama",
        "  groups: Cert-Eligible",
    ]
    for identity, reason in (
        ("C02NOSUCH000", "device C02NOSUCH000 is not known to signal source 'jamf'"),
        (UNMANAGED_SERIAL, f"device {UNMANAGED_SERIAL} is not managed"),
    ):
        done = await acmegate(
            "lookup", "validate", "jamf-issuance", "--identity", identity, "--config", config
        )
        assert done.returncode == 1
        lines = done.stdout.splitlines()
        assert lines[0] == "Account validation failed." and f"  reason: {reason}" in lines
    done = await acmegate(
        "lookup", "validate", "nope", "--identity", MAC_SERIAL, "--config", config
    )
    assert done.returncode == 2 and "no lookup policy named 'nope'" in done.stderr


async def test_fake_jamf_serves_an_inventory_file() -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "acmegate.cli.main",
        "fake-jamf",
        "--inventory",
        str(EXAMPLE_INVENTORY),
        "--port",
        str(port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        banner = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert f"listening on http://127.0.0.1:{port}" in banner, banner
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"http://127.0.0.1:{port}/api/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": "acmegate-demo",
                    "client_secret": "demo-client-secret",
                },
            ) as response:
                token = (await response.json())["access_token"]
            async with http.get(
                f"http://127.0.0.1:{port}/api/v2/mobile-devices/detail",
                params={"filter": 'serialNumber=="DMQDEMO0002"'},
                headers={"Authorization": f"Bearer {token}"},
            ) as response:
                assert (await response.json())["totalCount"] == 1
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 15)
    assert process.returncode == 0
