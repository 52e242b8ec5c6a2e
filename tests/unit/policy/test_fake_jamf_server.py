"""The fake Jamf Pro server behaves as docs/jamf.md §8 says the real one does.

The Jamf client is tested against this fake, so the fake is tested against the reference:
both auth flows with expiring tokens, keep-alive and invalidate, inventory sections, filters,
paging, sorting, the exact error bodies, unknown serials, old-version 404s, and faults.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from acmegate.testkit.fakejamf import FakeJamf
from tests.support.fake_jamf import (
    CLIENT_ID,
    CLIENT_SECRET,
    DUPLICATE_SERIAL,
    MAC_SERIAL,
    PASSWORD,
    PHONE_SERIAL,
    USERNAME,
    new_fake,
)

INVALID_TOKEN = {
    "httpStatus": 401,
    "errors": [{"code": "INVALID_TOKEN", "description": "Unauthorized", "id": "0", "field": None}],
}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def client_token(http: aiohttp.ClientSession, fake: FakeJamf) -> str:
    async with http.post(
        f"{fake.url}/api/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    ) as response:
        assert response.status == 200
        token: str = (await response.json())["access_token"]
        return token


async def get(
    http: aiohttp.ClientSession, fake: FakeJamf, path: str, token: str, params: Any = None
) -> tuple[int, Any]:
    async with http.get(
        f"{fake.url}{path}", params=params, headers={"Authorization": f"Bearer {token}"}
    ) as response:
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, body


# --- authentication (docs/jamf.md §8.1, §8.2)
# ------------------------------------------------------


async def test_an_api_client_gets_an_oauth_token_on_both_paths(
    fake_jamf: FakeJamf, http: aiohttp.ClientSession
) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    for path in ("/api/oauth/token", "/api/v1/oauth/token"):
        async with http.post(f"{fake_jamf.url}{path}", data=form) as response:
            body = await response.json()
        assert response.status == 200
        assert set(body) == {"access_token", "scope", "token_type", "expires_in"}
        assert body["token_type"] == "Bearer" and body["scope"] == "api-role:1"
        assert body["expires_in"] == 599  # a second short of the 600 s lifetime, as Jamf does


async def test_oauth_errors_are_rfc6749_bodies(
    fake_jamf: FakeJamf, http: aiohttp.ClientSession
) -> None:
    url = f"{fake_jamf.url}/api/oauth/token"
    async with http.post(url, data={"grant_type": "password", "client_id": CLIENT_ID}) as r:
        assert r.status == 400
        assert await r.json() == {
            "error": "invalid_request",
            "error_description": "OAuth 2.0 Parameter: grant_type",
            "error_uri": "https://datatracker.ietf.org/doc/html/rfc6749#section-5.2",
        }
    bad = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": "nope"}
    async with http.post(url, data=bad) as r:
        assert (r.status, await r.json()) == (401, {"error": "invalid_client"})


async def test_an_older_jamf_lacks_the_v1_oauth_path() -> None:
    fake = new_fake({"oauth_paths": ["/api/oauth/token"]})
    await fake.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{fake.url}/api/v1/oauth/token", data={}) as response:
                assert response.status == 404
    finally:
        await fake.stop()


async def test_a_user_token_keeps_alive_and_is_invalidated(
    fake_jamf: FakeJamf, http: aiohttp.ClientSession
) -> None:
    basic = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    async with http.post(
        f"{fake_jamf.url}/api/v1/auth/token", headers={"Authorization": f"Basic {basic}"}
    ) as response:
        body = await response.json()
    assert response.status == 200 and set(body) == {"token", "expires"}
    assert body["expires"].endswith("Z") and "." in body["expires"]  # RFC 3339 with ms
    first = body["token"]

    async with http.post(
        f"{fake_jamf.url}/api/v1/auth/keep-alive", headers={"Authorization": f"Bearer {first}"}
    ) as response:
        second = (await response.json())["token"]
    assert second != first
    # Keep-alive revoked the old token.
    assert await get(http, fake_jamf, "/api/v1/jamf-pro-version", first) == (401, INVALID_TOKEN)
    async with http.post(
        f"{fake_jamf.url}/api/v1/auth/invalidate-token",
        headers={"Authorization": f"Bearer {second}"},
    ) as response:
        assert response.status == 204
    assert await get(http, fake_jamf, "/api/v1/jamf-pro-version", second) == (401, INVALID_TOKEN)
    events = [e.event for e in fake_jamf.tokens.log]
    assert events == ["issued", "kept-alive", "issued", "rejected", "invalidated", "rejected"]


async def test_bad_basic_credentials_get_the_empty_api_error(
    fake_jamf: FakeJamf, http: aiohttp.ClientSession
) -> None:
    basic = base64.b64encode(f"{USERNAME}:wrong".encode()).decode()
    async with http.post(
        f"{fake_jamf.url}/api/v1/auth/token", headers={"Authorization": f"Basic {basic}"}
    ) as response:
        assert (response.status, await response.json()) == (401, {"httpStatus": 401, "errors": []})


async def test_keep_alive_is_for_user_tokens_only(
    fake_jamf: FakeJamf, http: aiohttp.ClientSession
) -> None:
    token = await client_token(http, fake_jamf)
    async with http.post(
        f"{fake_jamf.url}/api/v1/auth/keep-alive", headers={"Authorization": f"Bearer {token}"}
    ) as response:
        assert response.status == 401


async def test_tokens_expire_and_the_expiry_fault_ends_them_now(
    fake_jamf: FakeJamf, http: aiohttp.ClientSession
) -> None:
    token = await client_token(http, fake_jamf)
    assert (await get(http, fake_jamf, "/api/v1/jamf-pro-version", token))[0] == 200
    assert fake_jamf.expire_tokens() == 1
    assert await get(http, fake_jamf, "/api/v1/jamf-pro-version", token) == (401, INVALID_TOKEN)
    assert [e.event for e in fake_jamf.tokens.log][-2:] == ["expired-by-fault", "rejected"]


async def test_a_missing_token_and_a_missing_privilege(
    http: aiohttp.ClientSession,
) -> None:
    fake = new_fake(
        {
            "api_clients": [
                {
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "privileges": ["Read Mobile Devices"],
                }
            ]
        }
    )
    await fake.start()
    try:
        assert await get(http, fake, "/api/v4/computers-inventory", "garbage") == (
            401,
            INVALID_TOKEN,
        )
        token = await client_token(http, fake)
        status, body = await get(http, fake, "/api/v4/computers-inventory", token)
        assert status == 403 and body["errors"][0]["code"] == "INVALID_PRIVILEGE"
    finally:
        await fake.stop()


# --- inventory (docs/jamf.md §8.3–§8.7)
# -------------------------------------------------------------


async def test_a_computer_by_serial_with_repeated_or_joined_sections(
    fake_jamf: FakeJamf, http: aiohttp.ClientSession
) -> None:
    token = await client_token(http, fake_jamf)
    # The filter compares case-insensitively (docs/jamf.md §8.3).
    rsql = f'hardware.serialNumber=="{MAC_SERIAL.lower()}"'
    repeated = [("section", "GENERAL"), ("section", "USER_AND_LOCATION"), ("filter", rsql)]
    joined = [("section", "GENERAL,USER_AND_LOCATION"), ("filter", rsql)]
    for params in (repeated, joined):
        status, body = await get(http, fake_jamf, "/api/v4/computers-inventory", token, params)
        assert status == 200 and body["totalCount"] == 1
        record = body["results"][0]
        assert record["id"] == "42" and record["udid"]
        assert record["general"]["remoteManagement"]["managed"] is True
        assert record["userAndLocation"]["departmentId"] == "1"
        # Sections not asked for come back null.
        assert record["hardware"] is None and record["groupMemberships"] is None
        assert "lastContact" in record["general"] and "lastContactTime" not in record["general"]


async def test_versions_differ_as_the_schema_says(
    fake_jamf: FakeJamf, http: aiohttp.ClientSession
) -> None:
    token = await client_token(http, fake_jamf)
    params = {"filter": f'udid=="{fake_jamf.inventory.computers[0].udid}"'}
    _, v1 = await get(http, fake_jamf, "/api/v1/computers-inventory", token, params)
    _, v3 = await get(http, fake_jamf, "/api/v3/computers-inventory", token, params)
    assert "lastContactTime" in v1["results"][0]["general"]
    assert "fonts" in v1["results"][0] and "fonts" not in v3["results"][0]
    status, _ = await get(
        http, fake_jamf, "/api/v1/computers-inventory", token, {"section": "FONTS"}
    )
    assert status == 200
    status, _body = await get(
        http, fake_jamf, "/api/v4/computers-inventory", token, {"section": "FONTS"}
    )
    assert status == 400


async def test_an_unknown_serial_is_an_empty_200(
    fake_jamf: FakeJamf, http: aiohttp.ClientSession
) -> None:
    token = await client_token(http, fake_jamf)
    params = {"filter": 'hardware.serialNumber=="C02NOSUCH000"'}
    assert await get(http, fake_jamf, "/api/v4/computers-inventory", token, params) == (
        200,
        {"totalCount": 0, "results": []},
    )


async def test_duplicate_serials_count_two(
    fake_jamf: FakeJamf, http: aiohttp.ClientSession
) -> None:
    token = await client_token(http, fake_jamf)
    params = {"filter": f'hardware.serialNumber=="{DUPLICATE_SERIAL}"', "page-size": "1"}
    _, body = await get(http, fake_jamf, "/api/v4/computers-inventory", token, params)
    assert body["totalCount"] == 2 and len(body["results"]) == 1


async def test_paging_sorting_and_ignored_bad_paging_values(
    fake_jamf: FakeJamf, http: aiohttp.ClientSession
) -> None:
    token = await client_token(http, fake_jamf)
    path = "/api/v4/computers-inventory"
    _, first = await get(http, fake_jamf, path, token, {"page-size": "2", "sort": "id:desc"})
    _, second = await get(
        http, fake_jamf, path, token, {"page": "1", "page-size": "2", "sort": "id:desc"}
    )
    assert first["totalCount"] == second["totalCount"] == 6
    assert [r["id"] for r in first["results"] + second["results"]] == ["47", "46", "45", "44"]
    _, everything = await get(http, fake_jamf, path, token, {"page": "-3", "page-size": "x"})
    assert len(everything["results"]) == 6  # defaults 0 / 100


async def test_invalid_sections_sorts_and_filters_get_jamfs_400s(
    fake_jamf: FakeJamf, http: aiohttp.ClientSession
) -> None:
    token = await client_token(http, fake_jamf)
    path = "/api/v4/computers-inventory"
    status, body = await get(http, fake_jamf, path, token, {"section": "general"})
    assert status == 400
    error = body["errors"][0]
    assert error["code"] == "INVALID_REQUEST_PARAMETER_VALUE"
    assert error["description"].startswith("invalid value of request parameter: general")
    status, body = await get(http, fake_jamf, path, token, {"sort": "hardware.serialNumber:asc"})
    assert status == 400 and body["errors"][0] == {
        "code": "INVALID_FIELD",
        "description": (
            "No property 'hardware.serialNumber' found for type 'ComputersDenormalizedEntity'!"
        ),
        "id": "0",
        "field": None,
    }
    status, _ = await get(http, fake_jamf, path, token, {"filter": 'nope=="1"'})
    assert status == 400
    status, _ = await get(http, fake_jamf, path, token, {"filter": 'udid=="unterminated'})
    assert status == 400


async def test_rsql_operators(fake_jamf: FakeJamf, http: aiohttp.ClientSession) -> None:
    token = await client_token(http, fake_jamf)
    path = "/api/v4/computers-inventory"

    async def ids(rsql: str) -> list[str]:
        _, body = await get(http, fake_jamf, path, token, {"filter": rsql, "sort": "id:asc"})
        return [r["id"] for r in body["results"]]

    assert await ids("id=in=(42,45)") == ["42", "45"]
    assert await ids("general.remoteManagement.managed==false") == ["44"]
    assert await ids("id=ge=46") == ["46", "47"]
    assert await ids("id=lt=44,id==47") == ["42", "43", "47"]
    assert await ids("userAndLocation.email==*@example.com;id!=42") == ["43", "44", "45"]
    # Values with whitespace are quoted; single and double quotes are interchangeable.
    assert await ids('general.name=="LLAMA\'s macbook air"') == ["42"]
    status, _ = await get(http, fake_jamf, path, token, {"filter": "general.name=='a''b'"})
    assert status == 400


async def test_in_lists_compare_case_insensitively_and_pages_are_capped(
    fake_jamf: FakeJamf, http: aiohttp.ClientSession
) -> None:
    token = await client_token(http, fake_jamf)
    path = "/api/v4/computers-inventory"
    query = {"filter": f'hardware.serialNumber=in=("{MAC_SERIAL.lower()}",C02NONE)'}
    _, body = await get(http, fake_jamf, path, token, {**query, "section": "HARDWARE"})
    assert [r["hardware"]["serialNumber"] for r in body["results"]] == [MAC_SERIAL]
    fake_jamf.faults.max_page_size = 2
    _, body = await get(http, fake_jamf, path, token, {"page-size": "50"})
    assert body["totalCount"] > 2 and len(body["results"]) == 2


async def test_by_id_endpoints(fake_jamf: FakeJamf, http: aiohttp.ClientSession) -> None:
    token = await client_token(http, fake_jamf)
    status, body = await get(http, fake_jamf, "/api/v4/computers-inventory-detail/42", token)
    assert status == 200 and body["hardware"]["serialNumber"] == MAC_SERIAL
    status, body = await get(http, fake_jamf, "/api/v4/computers-inventory/999", token)
    assert status == 404 and body["errors"][0]["code"] == "INVALID_ID"
    assert body["errors"][0]["description"] == "computer with given id does not exist"
    status, body = await get(http, fake_jamf, "/api/v4/computers-inventory/abc", token)
    assert status == 400 and body["errors"][0]["field"] == "arg0"
    status, body = await get(http, fake_jamf, "/api/v2/mobile-devices/1/detail", token)
    assert status == 200 and body["type"] == "ios" and body["ios"]["supervised"] is True


async def test_an_older_jamf_answers_404_for_newer_inventory_versions() -> None:
    fake = new_fake({"computer_inventory_versions": [1, 2]})
    await fake.start()
    try:
        async with aiohttp.ClientSession() as http:
            token = await client_token(http, fake)
            assert (await get(http, fake, "/api/v4/computers-inventory", token))[0] == 404
            assert (await get(http, fake, "/api/v2/computers-inventory", token))[0] == 200
    finally:
        await fake.stop()


async def test_mobile_devices_by_serial_with_groups_and_names(
    fake_jamf: FakeJamf, http: aiohttp.ClientSession
) -> None:
    token = await client_token(http, fake_jamf)
    params = [
        ("section", "GENERAL"),
        ("section", "USER_AND_LOCATION"),
        ("section", "GROUPS"),
        ("filter", f'serialNumber=="{PHONE_SERIAL}"'),
        ("exception-handling", "LENIENT"),
    ]
    status, body = await get(http, fake_jamf, "/api/v2/mobile-devices/detail", token, params)
    assert status == 200 and body["totalCount"] == 1
    record = body["results"][0]
    assert record["deviceType"] == "iOS" and record["mobileDeviceId"] == "1"
    assert record["general"]["managed"] is True and record["hardware"] is None
    assert record["userAndLocation"]["department"] == "Sales"  # names, unlike computers
    assert {g["groupName"] for g in record["groups"]} == {"All Managed iPhones", "Cert-Eligible"}
    _, by_group = await get(
        http,
        fake_jamf,
        "/api/v2/mobile-devices/detail",
        token,
        {"filter": "groupName==cert-eligible"},
    )
    assert by_group["totalCount"] == 1


async def test_departments_buildings_sites_and_the_version(
    fake_jamf: FakeJamf, http: aiohttp.ClientSession
) -> None:
    token = await client_token(http, fake_jamf)
    assert await get(http, fake_jamf, "/api/v1/departments/1", token) == (
        200,
        {"id": "1", "name": "Engineering"},
    )
    assert (await get(http, fake_jamf, "/api/v1/buildings/1", token))[1]["name"] == "HQ"
    assert (await get(http, fake_jamf, "/api/v1/departments/9", token))[0] == 404
    _, sites = await get(http, fake_jamf, "/api/v1/sites", token)
    assert {"id": "3", "name": "Zurich"} in sites
    _, version = await get(http, fake_jamf, "/api/v1/jamf-pro-version", token)
    assert version == {"version": "11.30.1-t1718745216"}


async def test_the_classic_api_negotiates_and_404s_in_html(
    fake_jamf: FakeJamf, http: aiohttp.ClientSession
) -> None:
    token = await client_token(http, fake_jamf)
    auth = {"Authorization": f"Bearer {token}"}
    url = f"{fake_jamf.url}/JSSResource/computers/serialnumber/{MAC_SERIAL}"
    async with http.get(url, headers={**auth, "Accept": "application/json"}) as response:
        body = await response.json()
    assert body["computer"]["general"]["serial_number"] == MAC_SERIAL
    assert body["computer"]["location"]["department"] == "Engineering"
    async with http.get(url, headers=auth) as response:
        assert response.content_type == "text/xml"
        assert f"<serial_number>{MAC_SERIAL}</serial_number>" in await response.text()
    async with http.get(
        f"{fake_jamf.url}/JSSResource/mobiledevices/serialnumber/NOPE", headers=auth
    ) as response:
        assert response.status == 404 and response.content_type == "text/html"


# --- faults (docs/jamf.md §7)
# --------------------------------------------------------------------------


async def test_faults_5xx_slow_and_concurrency_are_injected_and_counted(
    fake_jamf: FakeJamf, http: aiohttp.ClientSession
) -> None:
    token = await client_token(http, fake_jamf)
    fake_jamf.faults.fail_next = 2
    statuses = [
        (await get(http, fake_jamf, "/api/v1/jamf-pro-version", token))[0] for _ in range(3)
    ]
    assert statuses == [503, 503, 200]

    fake_jamf.faults.delay = 0.2
    fake_jamf.reset_stats()
    # Eight at once over eight connections: the fake notices more than five.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=8)) as wide:
        await asyncio.gather(
            *(get(wide, fake_jamf, "/api/v1/jamf-pro-version", token) for _ in range(8))
        )
    assert fake_jamf.stats.max_in_flight == 8
    assert fake_jamf.stats.max_connections >= 6 and fake_jamf.stats.over_limit > 0


async def test_faults_are_controllable_over_http(
    fake_jamf: FakeJamf, http: aiohttp.ClientSession
) -> None:
    async with http.post(f"{fake_jamf.url}/_fake/faults", json={"fail_next": 1}) as response:
        assert response.status == 200
    assert fake_jamf.faults.fail_next == 1
    async with http.post(f"{fake_jamf.url}/_fake/faults", json={"nope": 1}) as response:
        assert response.status == 400
    async with http.delete(f"{fake_jamf.url}/_fake/devices/{MAC_SERIAL}") as response:
        assert response.status == 204
    assert fake_jamf.find(MAC_SERIAL) is None
    async with http.get(f"{fake_jamf.url}/_fake/stats") as response:
        assert (await response.json())["faults"]["fail_next"] == 1
