"""The fake Jamf Pro's Classic API configuration profiles: XML in and out, ids, 409 on a
duplicate name or an unknown scope group, 401 without a token, 403 without the privilege."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator

import aiohttp
import pytest

from acmegate.testkit.fakejamf import ALL_PRIVILEGES, FakeJamf
from tests.support.fake_jamf import fake_jamf
from tests.unit.policy.test_fake_jamf_server import client_token

__all__ = ["fake_jamf"]

OSX = "/JSSResource/osxconfigurationprofiles"
PLIST = (
    '<?xml version="1.0"?><plist version="1.0"><dict><key>A</key>'
    "<string>&lt;b&gt;</string></dict></plist>"
)


def body(name: str, group: str = "Cert-Eligible", root: str = "os_x_configuration_profile") -> str:
    element = ET.Element(root)
    general = ET.SubElement(element, "general")
    ET.SubElement(general, "name").text = name
    ET.SubElement(general, "payloads").text = PLIST
    scope = ET.SubElement(element, "scope")
    groups = ET.SubElement(scope, "computer_groups")
    ET.SubElement(ET.SubElement(groups, "computer_group"), "name").text = group
    return ET.tostring(element, encoding="unicode")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def call(
    http: aiohttp.ClientSession, method: str, url: str, token: str | None, data: str | None = None
) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.request(method, url, data=data, headers=headers) as response:
        return response.status, await response.text()


async def test_create_read_update_round_trip(
    http: aiohttp.ClientSession, fake_jamf: FakeJamf
) -> None:
    token = await client_token(http, fake_jamf)
    status, text = await call(http, "POST", f"{fake_jamf.url}{OSX}/id/0", token, body("Wi-Fi"))
    assert status == 201
    assert ET.fromstring(text).findtext("id") == "1"

    status, text = await call(http, "GET", f"{fake_jamf.url}{OSX}/name/Wi-Fi", token)
    assert status == 200
    root = ET.fromstring(text)
    assert root.tag == "os_x_configuration_profile"
    assert root.findtext("general/id") == "1"
    # The plist travels escaped and comes back as the same text.
    assert root.findtext("general/payloads") == PLIST
    assert "&lt;plist" in text
    assert root.findtext("scope/computer_groups/computer_group/id") == "7"

    status, _ = await call(http, "PUT", f"{fake_jamf.url}{OSX}/id/1", token, body("Wi-Fi 2"))
    assert status == 201
    assert fake_jamf.profiles.profiles["osx"][1].name == "Wi-Fi 2"
    status, _ = await call(http, "GET", f"{fake_jamf.url}{OSX}/name/Wi-Fi", token)
    assert status == 404


async def test_refusals(http: aiohttp.ClientSession, fake_jamf: FakeJamf) -> None:
    url = f"{fake_jamf.url}{OSX}/id/0"
    status, text = await call(http, "POST", url, None, body("Wi-Fi"))
    assert status == 401 and "Unauthorized" in text

    token = await client_token(http, fake_jamf)
    assert (await call(http, "POST", url, token, body("Wi-Fi")))[0] == 201
    status, text = await call(http, "POST", url, token, body("Wi-Fi"))
    assert status == 409 and "Duplicate name" in text
    status, text = await call(http, "POST", url, token, body("Other", group="No Such Group"))
    assert status == 409 and "Problem with computer group in scope" in text
    # A refused update changes nothing.
    status, _ = await call(
        http, "PUT", f"{fake_jamf.url}{OSX}/id/1", token, body("Renamed", group="Nope")
    )
    assert status == 409 and fake_jamf.profiles.profiles["osx"][1].name == "Wi-Fi"
    # The macOS root element is not a mobile device profile.
    status, _ = await call(
        http,
        "POST",
        f"{fake_jamf.url}/JSSResource/mobiledeviceconfigurationprofiles/id/0",
        token,
        body("Wi-Fi"),
    )
    assert status == 400

    fake_jamf.inventory.api_clients[0].privileges = [
        p for p in ALL_PRIVILEGES if p != "Update macOS Configuration Profiles"
    ]
    token = await client_token(http, fake_jamf)
    status, text = await call(http, "PUT", f"{fake_jamf.url}{OSX}/id/1", token, body("X"))
    assert status == 403 and "sufficient privileges" in text
    assert (await call(http, "GET", f"{fake_jamf.url}{OSX}/id/1", token))[0] == 200
