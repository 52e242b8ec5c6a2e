"""Inventory endpoints of the fake (docs/jamf.md §8.3–§8.8).

List endpoints take ``section`` (repeated or comma-joined, case-sensitive, default GENERAL;
sections not asked for come back ``null``), ``page``/``page-size`` (zero-based, default 0/100,
bad or negative values ignored), ``sort`` (validated against the documented fields) and
``filter`` (RSQL on the documented fields, strings compared case-insensitively). An unknown
serial is ``200 {"totalCount": 0, "results": []}``; by-id endpoints answer 404 ``INVALID_ID``
(400 for a non-numeric id). ``/api/vN/computers-inventory`` exists only for the versions the
inventory lists, so an older Jamf can be emulated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web

from acmegate.testkit.fakejamf import fields, rsql
from acmegate.testkit.fakejamf.auth_routes import bearer
from acmegate.testkit.fakejamf.errors import api_error, invalid_id, non_numeric_id
from acmegate.testkit.fakejamf.inventory import (
    Computer,
    MobileDevice,
    Named,
    computer_record,
    mobile_record,
    mobile_single,
)
from acmegate.testkit.fakejamf.server import FAKE_JAMF, FakeJamf

COMPUTER_SECTION_KEYS = {
    "GENERAL": "general",
    "DISK_ENCRYPTION": "diskEncryption",
    "PURCHASING": "purchasing",
    "APPLICATIONS": "applications",
    "STORAGE": "storage",
    "USER_AND_LOCATION": "userAndLocation",
    "CONFIGURATION_PROFILES": "configurationProfiles",
    "PRINTERS": "printers",
    "SERVICES": "services",
    "HARDWARE": "hardware",
    "LOCAL_USER_ACCOUNTS": "localUserAccounts",
    "CERTIFICATES": "certificates",
    "ATTACHMENTS": "attachments",
    "PLUGINS": "plugins",
    "PACKAGE_RECEIPTS": "packageReceipts",
    "FONTS": "fonts",
    "SECURITY": "security",
    "OPERATING_SYSTEM": "operatingSystem",
    "LICENSED_SOFTWARE": "licensedSoftware",
    "IBEACONS": "ibeacons",
    "SOFTWARE_UPDATES": "softwareUpdates",
    "EXTENSION_ATTRIBUTES": "extensionAttributes",
    "CONTENT_CACHING": "contentCaching",
    "GROUP_MEMBERSHIPS": "groupMemberships",
}
MOBILE_SECTION_KEYS = {
    "GENERAL": "general",
    "HARDWARE": "hardware",
    "USER_AND_LOCATION": "userAndLocation",
    "PURCHASING": "purchasing",
    "SECURITY": "security",
    "APPLICATIONS": "applications",
    "EBOOKS": "ebooks",
    "NETWORK": "network",
    "SERVICE_SUBSCRIPTIONS": "serviceSubscriptions",
    "CERTIFICATES": "certificates",
    "PROFILES": "profiles",
    "USER_PROFILES": "userProfiles",
    "PROVISIONING_PROFILES": "provisioningProfiles",
    "SHARED_USERS": "sharedUsers",
    "GROUPS": "groups",
    "EXTENSION_ATTRIBUTES": "extensionAttributes",
}
# The flat filter/sort names of mobile devices → where the record keeps them.
MOBILE_PATHS = {
    "serialNumber": "hardware.serialNumber",
    "udid": "general.udid",
    "displayName": "general.displayName",
    "managed": "general.managed",
    "supervised": "general.supervised",
    "mobileDeviceId": "mobileDeviceId",
    "managementId": "general.managementId",
    "assetTag": "general.assetTag",
    "osVersion": "general.osVersion",
    "osBuild": "general.osBuild",
    "ipAddress": "general.ipAddress",
    "timeZone": "general.timeZone",
    "lastInventoryUpdateDate": "general.lastInventoryUpdateDate",
    "lastContactDate": "general.lastContactDate",
    "lastEnrolledDate": "general.lastEnrolledDate",
    "deviceOwnershipType": "general.deviceOwnershipType",
    "model": "hardware.model",
    "modelIdentifier": "hardware.modelIdentifier",
    "modelNumber": "hardware.modelNumber",
    "wifiMacAddress": "hardware.wifiMacAddress",
    "bluetoothMacAddress": "hardware.bluetoothMacAddress",
    "capacityMb": "hardware.capacityMb",
    "username": "userAndLocation.username",
    "emailAddress": "userAndLocation.emailAddress",
    "fullName": "userAndLocation.realName",
    "position": "userAndLocation.position",
    "room": "userAndLocation.room",
    "userPhoneNumber": "userAndLocation.phoneNumber",
    "department": "userAndLocation.department",
    "building": "userAndLocation.building",
}


def walk(record: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path, ``None`` where the path ends."""
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _int(request: web.Request, name: str, default: int) -> int:
    # Invalid or negative page/page-size values are ignored (docs/jamf.md §8.3).
    try:
        value = int(request.query.get(name, ""))
    except ValueError:
        return default
    return value if value >= 0 else default


def _sections(
    request: web.Request, allowed: frozenset[str], order: Sequence[str]
) -> list[str] | web.Response:
    names = [
        part.strip()
        for value in request.query.getall("section", [])
        for part in value.split(",")
        if part.strip()
    ]
    for name in names:
        if name not in allowed:
            possible = ",".join(section for section in order if section in allowed)
            return api_error(
                400,
                "INVALID_REQUEST_PARAMETER_VALUE",
                f"invalid value of request parameter: {name}, possible values: {possible}",
            )
    return names or ["GENERAL"]


def _sort(
    request: web.Request, allowed: frozenset[str], default: str, entity: str
) -> list[tuple[str, bool]] | web.Response:
    raw = request.query.getall("sort", []) or [default]
    keys: list[tuple[str, bool]] = []
    for item in (part.strip() for value in raw for part in value.split(",")):
        if not item:
            continue
        prop, _, direction = item.partition(":")
        direction = direction.lower() or "asc"
        if prop not in allowed or direction not in ("asc", "desc"):
            return api_error(
                400, "INVALID_FIELD", f"No property '{prop}' found for type '{entity}'!"
            )
        keys.append((prop, direction == "desc"))
    return keys


def _filter(request: web.Request, allowed: frozenset[str]) -> rsql.Node | web.Response | None:
    text = request.query.get("filter", "").strip()
    if not text:
        return None
    try:
        node = rsql.parse(text)
    except rsql.RsqlError as exc:
        return api_error(400, "INVALID_RSQL_FILTER", str(exc), field="filter")
    for selector in rsql.selectors(node):
        if selector not in allowed:
            return api_error(
                400, "INVALID_FIELD", f"Invalid field in filter: {selector}", field="filter"
            )
    return node


Resolver = Callable[[Mapping[str, Any], str], Sequence[Any]]


def _page(
    request: web.Request,
    fake: FakeJamf,
    records: list[dict[str, Any]],
    node: rsql.Node | None,
    sort: list[tuple[str, bool]],
    resolve: Resolver,
    keep: set[str],
    section_keys: Mapping[str, str],
) -> web.Response:
    if node is not None:
        records = [r for r in records if rsql.matches(node, lambda f, r=r: resolve(r, f))]  # type: ignore[misc]
    for prop, descending in reversed(sort):

        def key(record: Mapping[str, Any], prop: str = prop) -> tuple[bool, str]:
            values = resolve(record, prop)
            value = values[0] if values else None
            return (value is None, "" if value is None else str(value).casefold())

        records.sort(key=key, reverse=descending)
    page, size = _int(request, "page", 0), _int(request, "page-size", 100)
    # Jamf answers no more than MAX_PAGE_SIZE records per page (docs/jamf.md §8.3).
    size = min(size, fake.faults.max_page_size)
    chunk = records[page * size : page * size + size]
    if fake.faults.paging_gaps and len(chunk) > 1:
        chunk = chunk[1:]
    blank = {key for key in section_keys.values() if key not in keep}
    results = [{k: (None if k in blank else v) for k, v in record.items()} for record in chunk]
    return web.json_response({"totalCount": len(records), "results": results})


# Identifier fields a filter may name → the device attribute holding it (the fast path).
_COMPUTER_KEYS = {"hardware.serialNumber": "serial_number", "udid": "udid", "id": "id"}
_MOBILE_KEYS = {"serialNumber": "serial_number", "udid": "udid", "mobileDeviceId": "id"}


def _candidates(
    node: rsql.Node | None, devices: Sequence[Any], keys: Mapping[str, str]
) -> list[Any]:
    """The devices a filter can match at all: a plain ``==``/``=in=`` on an identifier narrows
    them before records are built (a benchmark asks about one device among thousands). The
    whole filter is still evaluated on what is left, so answers are unchanged."""
    if (
        isinstance(node, rsql.Comparison)
        and node.operator in ("==", "=in=")
        and node.selector in keys
        and not any("*" in argument for argument in node.arguments)
    ):
        wanted = {argument.casefold() for argument in node.arguments}
        attribute = keys[node.selector]
        return [d for d in devices if str(getattr(d, attribute)).casefold() in wanted]
    return list(devices)


def _computer_version(request: web.Request, fake: FakeJamf) -> int | None:
    version = int(request.match_info["version"])
    if version not in (1, 2, 3, 4) or version not in fake.inventory.computer_inventory_versions:
        return None
    return version


def _computer_fields(version: int) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """(sections, filter fields, sort fields) of a computers-inventory version."""
    if version == 4:
        return fields.COMPUTER_SECTIONS_V2_V4, fields.COMPUTER_FILTER_V4, fields.COMPUTER_SORT_V4
    sections = fields.COMPUTER_SECTIONS_V1 if version == 1 else fields.COMPUTER_SECTIONS_V2_V4
    return sections, fields.COMPUTER_FILTER_V1_V3, fields.COMPUTER_SORT_V1_V3


async def computers(request: web.Request) -> web.Response:
    fake = request.app[FAKE_JAMF]
    version = _computer_version(request, fake)
    if version is None:
        return api_error(404)
    token = bearer(request, "Read Computers")
    if isinstance(token, web.Response):
        return token
    allowed_sections, filter_fields, sort_fields = _computer_fields(version)
    sections = _sections(request, allowed_sections, list(COMPUTER_SECTION_KEYS))
    if isinstance(sections, web.Response):
        return sections
    sort = _sort(request, sort_fields, "general.name:asc", "ComputersDenormalizedEntity")
    if isinstance(sort, web.Response):
        return sort
    node = _filter(request, filter_fields)
    if isinstance(node, web.Response):
        return node
    computers = _candidates(node, fake.inventory.computers, _COMPUTER_KEYS)
    records = [computer_record(fake.inventory, c, version) for c in computers]
    keep = {COMPUTER_SECTION_KEYS[s] for s in sections}
    return _page(
        request,
        fake,
        records,
        node,
        sort,
        lambda record, field: [walk(record, field)],
        keep,
        COMPUTER_SECTION_KEYS,
    )


def _numeric(identifier: str) -> bool:
    return identifier == "-1" or identifier.isdigit()


async def computer_by_id(request: web.Request) -> web.Response:
    fake = request.app[FAKE_JAMF]
    version = _computer_version(request, fake)
    if version is None:
        return api_error(404)
    token = bearer(request, "Read Computers")
    if isinstance(token, web.Response):
        return token
    identifier = request.match_info["id"]
    if not _numeric(identifier):
        return non_numeric_id(identifier)
    computer = next((c for c in fake.inventory.computers if c.id == identifier), None)
    if computer is None:
        return invalid_id("computer", identifier)
    record = computer_record(fake.inventory, computer, version)
    if request.match_info.get("detail"):
        return web.json_response(record)
    sections = _sections(request, _computer_fields(version)[0], list(COMPUTER_SECTION_KEYS))
    if isinstance(sections, web.Response):
        return sections
    keep = {COMPUTER_SECTION_KEYS[s] for s in sections}
    blank = set(COMPUTER_SECTION_KEYS.values()) - keep
    return web.json_response({k: (None if k in blank else v) for k, v in record.items()})


def _mobile_values(record: Mapping[str, Any], field: str) -> Sequence[Any]:
    if field in ("groupId", "groupName"):
        groups = record.get("groups") or []
        return [group.get(field) for group in groups if isinstance(group, Mapping)]
    path = MOBILE_PATHS.get(field)
    return [walk(record, path)] if path else [None]


async def mobile_devices(request: web.Request) -> web.Response:
    fake = request.app[FAKE_JAMF]
    token = bearer(request, "Read Mobile Devices")
    if isinstance(token, web.Response):
        return token
    sections = _sections(request, fields.MOBILE_SECTIONS, list(MOBILE_SECTION_KEYS))
    if isinstance(sections, web.Response):
        return sections
    handling = request.query.get("exception-handling", "STRICT")
    if handling not in ("STRICT", "LENIENT"):
        return api_error(
            400,
            "INVALID_REQUEST_PARAMETER_VALUE",
            f"invalid value of request parameter: {handling}, possible values: STRICT,LENIENT",
        )
    sort = _sort(request, fields.MOBILE_SORT, "displayName:asc", "MobileDeviceDenormalizedEntity")
    if isinstance(sort, web.Response):
        return sort
    node = _filter(request, fields.MOBILE_FILTER)
    if isinstance(node, web.Response):
        return node
    devices = _candidates(node, fake.inventory.mobile_devices, _MOBILE_KEYS)
    records = [mobile_record(fake.inventory, d) for d in devices]
    keep = {MOBILE_SECTION_KEYS[s] for s in sections}
    return _page(request, fake, records, node, sort, _mobile_values, keep, MOBILE_SECTION_KEYS)


async def mobile_by_id(request: web.Request) -> web.Response:
    fake = request.app[FAKE_JAMF]
    token = bearer(request, "Read Mobile Devices")
    if isinstance(token, web.Response):
        return token
    identifier = request.match_info["id"]
    if not _numeric(identifier):
        return non_numeric_id(identifier)
    device = next((d for d in fake.inventory.mobile_devices if d.id == identifier), None)
    if device is None:
        return invalid_id("mobile device", identifier)
    return web.json_response(mobile_single(fake.inventory, device))


def _named(kind: str, privilege: str, items: Callable[[FakeJamf], list[Named]]) -> Any:
    async def handler(request: web.Request) -> web.Response:
        fake = request.app[FAKE_JAMF]
        token = bearer(request, privilege)
        if isinstance(token, web.Response):
            return token
        identifier = request.match_info["id"]
        found = next((item for item in items(fake) if item.id == identifier), None)
        if found is None:
            return invalid_id(kind, identifier)
        body: dict[str, Any] = {"id": found.id, "name": found.name}
        if kind == "building":
            body.update(
                streetAddress1=None,
                streetAddress2=None,
                city=None,
                stateProvince=None,
                zipPostalCode=None,
                country=None,
            )
        return web.json_response(body)

    return handler


async def sites(request: web.Request) -> web.Response:
    fake = request.app[FAKE_JAMF]
    token = bearer(request, "Read Sites")
    if isinstance(token, web.Response):
        return token
    return web.json_response([{"id": s.id, "name": s.name} for s in fake.inventory.sites])


async def version(request: web.Request) -> web.Response:
    token = bearer(request)
    if isinstance(token, web.Response):
        return token
    return web.json_response({"version": request.app[FAKE_JAMF].inventory.version})


# --- Classic API (docs/jamf.md §8.8) --------------------------------------------------------

_NOT_FOUND_HTML = (
    "<html><head><title>Status page</title></head><body><p>Not Found</p>"
    "<p>The server has not found anything matching the request URI</p></body></html>"
)


def _xml(name: str, value: Any) -> str:
    if isinstance(value, dict):
        inner = "".join(_xml(key, item) for key, item in value.items())
        return f"<{name}>{inner}</{name}>"
    if isinstance(value, list):
        singular = {
            "computer_group_memberships": "group",
            "mobile_device_groups": "mobile_device_group",
        }
        child = singular.get(name, "item")
        return f"<{name}><size>{len(value)}</size>{''.join(_xml(child, v) for v in value)}</{name}>"
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"<{name}>{escape('' if value is None else str(value))}</{name}>"


def _classic(request: web.Request, root: str, body: dict[str, Any]) -> web.Response:
    if "application/json" in request.headers.get("Accept", ""):
        return web.json_response({root: body})
    return web.Response(
        text='<?xml version="1.0" encoding="UTF-8"?>' + _xml(root, body), content_type="text/xml"
    )


def _name(items: list[Named], identifier: str | None) -> str:
    return next((item.name for item in items if item.id == identifier), "")


async def classic_computer(request: web.Request) -> web.Response:
    fake = request.app[FAKE_JAMF]
    token = bearer(request, "Read Computers")
    if isinstance(token, web.Response):
        return web.Response(status=token.status, text="Unauthorized", content_type="text/html")
    device = fake.find(request.match_info["serial"])
    if not isinstance(device, Computer):
        return web.Response(status=404, text=_NOT_FOUND_HTML, content_type="text/html")
    inv = fake.inventory
    body = {
        "general": {
            "id": int(device.id),
            "name": device.name,
            "serial_number": device.serial_number,
            "udid": device.udid,
            "remote_management": {"managed": device.managed, "management_username": "jamfadmin"},
            "supervised": device.supervised,
            "mdm_capable": device.managed,
            "report_date_utc": "2026-04-09T13:25:05.789+0000",
            "last_contact_time_utc": "2026-04-09T13:31:49.792+0000",
            "site": {"id": int(device.site_id), "name": _name(inv.sites, device.site_id) or "None"},
        },
        "location": {
            "username": device.username or "",
            "realname": device.realname or "",
            "email_address": device.email or "",
            "position": device.position or "",
            "department": _name(inv.departments, device.department_id),
            "building": _name(inv.buildings, device.building_id),
            "room": device.room or "",
        },
        "groups_accounts": {
            "computer_group_memberships": list(device.groups),
            "local_accounts": [],
        },
    }
    return _classic(request, "computer", body)


async def classic_mobile_device(request: web.Request) -> web.Response:
    fake = request.app[FAKE_JAMF]
    token = bearer(request, "Read Mobile Devices")
    if isinstance(token, web.Response):
        return web.Response(status=token.status, text="Unauthorized", content_type="text/html")
    device = fake.find(request.match_info["serial"])
    if not isinstance(device, MobileDevice):
        return web.Response(status=404, text=_NOT_FOUND_HTML, content_type="text/html")
    inv = fake.inventory
    groups = mobile_single(inv, device)["groups"]
    body = {
        "general": {
            "id": int(device.id),
            "display_name": device.name,
            "serial_number": device.serial_number,
            "udid": device.udid,
            "managed": device.managed,
            "supervised": device.supervised,
            "os_type": device.device_type,
            "device_ownership_level": device.ownership,
            "site": {"id": int(device.site_id), "name": _name(inv.sites, device.site_id) or "None"},
        },
        "location": {
            "username": device.username or "",
            "realname": device.realname or "",
            "email_address": device.email or "",
            "department": _name(inv.departments, device.department_id),
            "building": _name(inv.buildings, device.building_id),
            "room": device.room or "",
        },
        "mobile_device_groups": [{"id": int(g["groupId"]), "name": g["groupName"]} for g in groups],
    }
    return _classic(request, "mobile_device", body)


def add(router: web.UrlDispatcher) -> None:
    router.add_get(r"/api/v{version:\d+}/computers-inventory", computers)
    router.add_get(r"/api/v{version:\d+}/computers-inventory/{id}", computer_by_id)
    router.add_get(r"/api/v{version:\d+}/computers-inventory{detail:-detail}/{id}", computer_by_id)
    router.add_get("/api/v2/mobile-devices/detail", mobile_devices)
    router.add_get("/api/v2/mobile-devices/{id}/detail", mobile_by_id)
    router.add_get(
        "/api/v1/departments/{id}",
        _named("department", "Read Departments", lambda f: f.inventory.departments),
    )
    router.add_get(
        "/api/v1/buildings/{id}",
        _named("building", "Read Buildings", lambda f: f.inventory.buildings),
    )
    router.add_get("/api/v1/sites", sites)
    router.add_get("/api/v1/jamf-pro-version", version)
    router.add_get("/JSSResource/computers/serialnumber/{serial}", classic_computer)
    router.add_get("/JSSResource/mobiledevices/serialnumber/{serial}", classic_mobile_device)
