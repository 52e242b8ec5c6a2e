"""The fake Jamf Pro server as a pytest fixture, its standard inventory, and config helpers.

    async def test_x(fake_jamf: FakeJamf) -> None:
        fake_jamf.faults.fail_next = 2          # run-time faults
        fake_jamf.remove_device(MAC_SERIAL)      # the device leaves Jamf
        assert fake_jamf.stats.max_connections <= 5

:func:`jamf_source` writes the secret files and returns the ``signal_sources`` entry of a Jamf
source pointing at the fake; :func:`jamf_overrides` returns the ``gateway_config`` overrides
that swap the static inventory of ``tests/support/gateway.py`` for it.
"""

from __future__ import annotations

import copy
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Literal

import msgspec
import pytest

from acmegate.common.config.model import JamfSourceConfig
from acmegate.testkit.fakejamf import FakeJamf, parse_inventory

CLIENT_ID = "acmegate-gateway"
CLIENT_SECRET = "jamf-client-s3cret-DO-NOT-PRINT"
USERNAME = "acmegate-api"
PASSWORD = "jamf-user-pa55word-DO-NOT-PRINT"

MAC_SERIAL = "C02JAMF0001"
MAC_UDID = "00006030-000651690A84001C"
MAC2_SERIAL = "C02JAMF0002"
PHONE_SERIAL = "DMQJAMFPHONE"
PHONE_UDID = "00008120-001C1D8136500032"
UNMANAGED_SERIAL = "C02JAMFUNMGD"
NO_GROUP_SERIAL = "C02JAMFNOGRP"
DUPLICATE_SERIAL = "C02JAMFDUPE1"

INVENTORY: dict[str, Any] = {
    "client_token_lifetime": 600,
    "user_token_lifetime": 1800,
    "api_clients": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "roles": [1]}],
    "users": [{"username": USERNAME, "password": PASSWORD}],
    "departments": [{"id": "1", "name": "Engineering"}, {"id": "2", "name": "Sales"}],
    "buildings": [{"id": "1", "name": "HQ"}],
    "sites": [{"id": "-1", "name": "None"}, {"id": "3", "name": "Zurich"}],
    "groups": {
        "computer": [
            {"id": "1", "name": "All Managed Clients", "smart": True},
            {"id": "7", "name": "Cert-Eligible", "description": "static list"},
        ],
        "mobile_device": [
            {"id": "1", "name": "All Managed iPhones", "smart": True},
            {"id": "4", "name": "Cert-Eligible"},
        ],
    },
    "computers": [
        {
            "id": "42",
            "serial_number": MAC_SERIAL,
            "udid": MAC_UDID,
            "name": "llama's MacBook Air",
            "username": "llama",
            "realname": "Llama Smith",
            "email": "llama@example.com",
            "department_id": "1",
            "building_id": "1",
            "site_id": "3",
            "groups": ["All Managed Clients", "Cert-Eligible"],
            "extension_attributes": {"Cost Center": "CC-1234"},
        },
        {
            "id": "43",
            "serial_number": MAC2_SERIAL,
            "udid": "00006030-0001111122223333",
            "name": "alpaca's MacBook Pro",
            "username": "alpaca",
            "email": "alpaca@example.com",
            "department_id": "1",
            "groups": ["Cert-Eligible"],
        },
        {
            "id": "44",
            "serial_number": UNMANAGED_SERIAL,
            "udid": "00006030-0004444455556666",
            "managed": False,
            "email": "gone@example.com",
            "department_id": "1",
            "groups": ["Cert-Eligible"],
        },
        {
            "id": "45",
            "serial_number": NO_GROUP_SERIAL,
            "udid": "00006030-0007777788889999",
            "email": "lab@example.com",
            "department_id": "1",
            "groups": ["All Managed Clients"],
        },
        {
            "id": "46",
            "serial_number": DUPLICATE_SERIAL,
            "udid": "00006030-000AAAAABBBBCCCC",
            "department_id": "1",
            "groups": ["Cert-Eligible"],
        },
        {
            "id": "47",
            "serial_number": DUPLICATE_SERIAL,
            "udid": "00006030-000DDDDDEEEEFFFF",
            "department_id": "1",
            "groups": ["Cert-Eligible"],
        },
    ],
    "mobile_devices": [
        {
            "id": "1",
            "serial_number": PHONE_SERIAL,
            "udid": PHONE_UDID,
            "name": "vicuna's iPhone",
            "username": "vicuna",
            "realname": "Vicuna Jones",
            "email": "vicuna@example.com",
            "department_id": "2",
            "building_id": "1",
            "site_id": "3",
            "groups": ["All Managed iPhones", "Cert-Eligible"],
        }
    ],
}

# The attribute mapping the tests' certificate template needs (${/source/department}, email).
ATTRIBUTE_MAPPING = {
    "department": "userAndLocation.department",
    "email": "userAndLocation.email",
    "username": "userAndLocation.username",
    "site": "general.site",
}

AuthType = Literal["client_credentials", "bearer_token"]


def new_fake(
    changes: dict[str, Any] | None = None, *, clock: Callable[[], float] = time.time
) -> FakeJamf:
    """A fake over a copy of :data:`INVENTORY` (top-level keys replaced by ``changes``)."""
    data = copy.deepcopy(INVENTORY)
    data.update(copy.deepcopy(changes or {}))
    return FakeJamf(parse_inventory(data), clock=clock)


class ManualClock:
    """Wall and monotonic time that move only when told (shared by the fake and a source)."""

    def __init__(self) -> None:
        # Start at the real time: Jamf's `expires` is read against the real wall clock.
        self.wall = time.time()
        self.mono = 1000.0

    def time(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


@pytest.fixture
async def fake_jamf() -> AsyncIterator[FakeJamf]:
    """A fake Jamf Pro server on a free port over the standard inventory."""
    fake = new_fake()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


def jamf_source(
    url: str,
    folder: Path,
    *,
    name: str = "jamf",
    auth: AuthType = "client_credentials",
    **settings: Any,
) -> dict[str, Any]:
    """A ``signal_sources`` entry for the fake at ``url``; secrets go into files in ``folder``.

    The file paths are relative, as an operator writes them next to the configuration.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if auth == "client_credentials":
        (folder / "jamf-client-secret").write_text(CLIENT_SECRET)
        credentials: dict[str, Any] = {
            "type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": {"file": "jamf-client-secret"},
        }
    else:
        (folder / "jamf-password").write_text(PASSWORD)
        credentials = {
            "type": "bearer_token",
            "username": USERNAME,
            "password": {"file": "jamf-password"},
        }
    source: dict[str, Any] = {
        "name": name,
        "type": "jamf_pro",
        "description": "the fake Jamf Pro of the tests",
        "url": url,
        "auth": credentials,
        "attribute_mapping": dict(ATTRIBUTE_MAPPING),
        "groups": ["Cert-Eligible"],
        "timeout": "2s",
        "retries": 1,
        "cache": "60s",
    }
    source.update(settings)
    return source


def jamf_config(
    url: str, folder: Path, *, auth: AuthType = "client_credentials", **settings: Any
) -> JamfSourceConfig:
    """A :class:`JamfSourceConfig` for the fake at ``url`` (secret files in ``folder``)."""
    raw = jamf_source(url, folder, auth=auth, **settings)
    raw.pop("type")
    secret_key = "client_secret" if auth == "client_credentials" else "password"
    raw["auth"][secret_key] = {"file": str(folder / raw["auth"][secret_key]["file"])}
    return msgspec.convert(raw, JamfSourceConfig)


def jamf_overrides(
    url: str,
    folder: Path,
    *,
    auth: AuthType = "client_credentials",
    revoke_on_failure: bool = False,
    source: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """``gateway_config`` overrides: a Jamf source, its lookup policy and workflow."""
    return {
        "signal_sources": [source or jamf_source(url, folder, auth=auth)],
        "lookup_policies": [
            {
                "name": "jamf-issuance",
                "purpose": "certificate_issuance",
                "signal_source": "jamf",
                "identity": "attested_serial",
                "revoke_on_failure": revoke_on_failure,
            }
        ],
        "policy_workflows": [
            {
                "name": "managed-devices",
                "conditions": {"lookup_policy": "jamf-issuance", "groups": ["Cert-Eligible"]},
            }
        ],
        **extra,
    }


__all__ = [
    "ATTRIBUTE_MAPPING",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "DUPLICATE_SERIAL",
    "INVENTORY",
    "MAC2_SERIAL",
    "MAC_SERIAL",
    "MAC_UDID",
    "NO_GROUP_SERIAL",
    "PASSWORD",
    "PHONE_SERIAL",
    "PHONE_UDID",
    "UNMANAGED_SERIAL",
    "USERNAME",
    "ManualClock",
    "fake_jamf",
    "jamf_config",
    "jamf_overrides",
    "jamf_source",
    "new_fake",
]
