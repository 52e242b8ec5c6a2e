"""Configuration profiles of the Classic API, as ``acmegate platform publish`` uses them.

- ``GET /JSSResource/{osx,mobiledevice}configurationprofiles/name/{name}`` and ``/id/{id}`` →
  the profile as XML (root ``os_x_configuration_profile`` or ``configuration_profile``), 404
  when there is none;
- ``POST …/id/0`` creates (201, ``<root><id>N</id></root>``), 409 "Duplicate name" when a
  profile of that kind already has the name, 409 for a scope group that does not exist;
- ``PUT …/id/{id}`` (or ``…/name/{name}``) updates the fields it carries (201, same body);
- no bearer token → 401, a token without the privilege → 403 (HTML status pages, as the
  Classic API answers errors).

``general/payloads`` carries the profile's plist as text (escaped inside the XML). Scope groups
are named by ``name`` (or ``id``) and must exist in :attr:`Inventory.groups`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from aiohttp import web

from acmegate.testkit.fakejamf.auth_routes import bearer
from acmegate.testkit.fakejamf.inventory import Group
from acmegate.testkit.fakejamf.profile_store import ProfileKind, StoredProfile
from acmegate.testkit.fakejamf.server import FAKE_JAMF


@dataclass(frozen=True)
class _Kind:
    path: str
    root: str
    noun: str  # in privilege names
    group_list: str
    group: str
    all_devices: str


KINDS: dict[ProfileKind, _Kind] = {
    "osx": _Kind(
        "osxconfigurationprofiles",
        "os_x_configuration_profile",
        "macOS Configuration Profiles",
        "computer_groups",
        "computer_group",
        "all_computers",
    ),
    "mobiledevice": _Kind(
        "mobiledeviceconfigurationprofiles",
        "configuration_profile",
        "Mobile Device Configuration Profiles",
        "mobile_device_groups",
        "mobile_device_group",
        "all_mobile_devices",
    ),
}


def _status_page(status: int, reason: str, message: str) -> web.Response:
    # The Classic API answers errors with an HTML status page, not JSON.
    body = (
        f"<html><head><title>Status page</title></head><body><p>{reason}</p>"
        f"<p>{message}</p></body></html>"
    )
    return web.Response(status=status, text=body, content_type="text/html")


def _xml(root: ET.Element, status: int = 200) -> web.Response:
    text = '<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(root, encoding="unicode")
    return web.Response(status=status, text=text, content_type="text/xml")


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    child = ET.SubElement(parent, tag)
    if text is not None:
        child.text = text
    return child


def render(kind: ProfileKind, profile: StoredProfile) -> ET.Element:
    """The XML Jamf answers a GET with."""
    spec = KINDS[kind]
    root = ET.Element(spec.root)
    general = _sub(root, "general")
    _sub(general, "id", str(profile.id))
    _sub(general, "name", profile.name)
    _sub(general, "description", profile.description)
    site = _sub(general, "site")
    _sub(site, "id", "-1")
    _sub(site, "name", "None")
    category = _sub(general, "category")
    _sub(category, "id", "-1")
    _sub(category, "name", "No category assigned")
    if kind == "osx":
        _sub(general, "distribution_method", profile.distribution_method)
        _sub(general, "user_removable", "false")
    else:
        _sub(general, "deployment_method", profile.distribution_method)
    _sub(general, "level", profile.level)
    _sub(general, "redeploy_on_update", profile.redeploy_on_update)
    _sub(general, "payloads", profile.payloads)
    scope = _sub(root, "scope")
    _sub(scope, spec.all_devices, "true" if profile.all_devices else "false")
    groups = _sub(scope, spec.group_list)
    for group in profile.groups:
        item = _sub(groups, spec.group)
        _sub(item, "id", group.id)
        _sub(item, "name", group.name)
    return root


def _kind(request: web.Request) -> ProfileKind:
    collection = request.match_info["collection"]
    return next(k for k, spec in KINDS.items() if spec.path == collection)


def _allowed(request: web.Request, action: str) -> web.Response | None:
    kind = _kind(request)
    token = bearer(request)
    if isinstance(token, web.Response):
        return _status_page(401, "Unauthorized", "The request requires user authentication")
    if f"{action} {KINDS[kind].noun}" not in token.privileges:
        return _status_page(
            403, "Forbidden", "The authenticated user does not have sufficient privileges"
        )
    return None


def _find(request: web.Request) -> StoredProfile | None:
    store = request.app[FAKE_JAMF].profiles
    kind = _kind(request)
    key, value = request.match_info["key"], request.match_info["value"]
    if key == "name":
        return store.by_name(kind, value)
    try:
        return store.profiles[kind].get(int(value))
    except ValueError:
        return None


async def get_profile(request: web.Request) -> web.Response:
    refused = _allowed(request, "Read")
    if refused is not None:
        return refused
    profile = _find(request)
    if profile is None:
        return _status_page(
            404, "Not Found", "The server has not found anything matching the request URI"
        )
    return _xml(render(_kind(request), profile))


class _Refused(Exception):
    def __init__(self, response: web.Response) -> None:
        self.response = response


def _apply(request: web.Request, profile: StoredProfile, body: ET.Element) -> None:
    """Copies the fields ``body`` carries into ``profile`` (a PUT changes only what it sends)."""
    fake = request.app[FAKE_JAMF]
    kind = _kind(request)
    spec = KINDS[kind]
    if body.tag != spec.root:
        raise _Refused(_status_page(400, "Bad Request", f"expected <{spec.root}>"))
    general = body.find("general")
    if general is not None:
        name = general.findtext("name")
        if name is not None:
            name = name.strip()
            if not name:
                raise _Refused(_status_page(409, "Conflict", "Error: Name is required"))
            other = fake.profiles.by_name(kind, name)
            if other is not None and other.id != profile.id:
                raise _Refused(_status_page(409, "Conflict", "Error: Duplicate name"))
            profile.name = name
        for tag in ("description", "payloads", "level", "redeploy_on_update"):
            value = general.findtext(tag)
            if value is not None:
                setattr(profile, tag, value)
        method = general.findtext("distribution_method" if kind == "osx" else "deployment_method")
        if method is not None:
            profile.distribution_method = method
    scope = body.find("scope")
    if scope is not None:
        everyone = scope.findtext(spec.all_devices)
        if everyone is not None:
            profile.all_devices = everyone.strip() == "true"
        listed = scope.find(spec.group_list)
        if listed is not None:
            known = (
                fake.inventory.groups.computer
                if kind == "osx"
                else fake.inventory.groups.mobile_device
            )
            groups: list[Group] = []
            for item in listed.findall(spec.group):
                name, ident = item.findtext("name"), item.findtext("id")
                group = next(
                    (g for g in known if g.name == name or (ident and g.id == ident)), None
                )
                if group is None:
                    raise _Refused(
                        _status_page(
                            409, "Conflict", f"Problem with {spec.group.replace('_', ' ')} in scope"
                        )
                    )
                groups.append(group)
            profile.groups = groups


async def _body(request: web.Request) -> ET.Element:
    try:
        return ET.fromstring(await request.text())  # noqa: S314 - the test's own XML
    except ET.ParseError as exc:
        raise _Refused(_status_page(400, "Bad Request", f"XML: {exc}")) from exc


async def create_profile(request: web.Request) -> web.Response:
    refused = _allowed(request, "Create")
    if refused is not None:
        return refused
    if request.match_info["key"] != "id" or request.match_info["value"] not in ("0", "-1"):
        return _status_page(409, "Conflict", "Error: POST creates with id 0")
    fake = request.app[FAKE_JAMF]
    kind = _kind(request)
    profile = StoredProfile(id=fake.profiles.next_id, name="")
    try:
        _apply(request, profile, await _body(request))
    except _Refused as exc:
        return exc.response
    if not profile.name:
        return _status_page(409, "Conflict", "Error: Name is required")
    fake.profiles.next_id += 1
    fake.profiles.profiles[kind][profile.id] = profile
    root = ET.Element(KINDS[kind].root)
    _sub(root, "id", str(profile.id))
    return _xml(root, 201)


async def update_profile(request: web.Request) -> web.Response:
    refused = _allowed(request, "Update")
    if refused is not None:
        return refused
    profile = _find(request)
    if profile is None:
        return _status_page(
            404, "Not Found", "The server has not found anything matching the request URI"
        )
    # Validate on a copy, so a refused update changes nothing.
    draft = StoredProfile(**{**profile.__dict__, "groups": list(profile.groups)})
    try:
        _apply(request, draft, await _body(request))
    except _Refused as exc:
        return exc.response
    draft.updates += 1
    request.app[FAKE_JAMF].profiles.profiles[_kind(request)][profile.id] = draft
    root = ET.Element(KINDS[_kind(request)].root)
    _sub(root, "id", str(profile.id))
    return _xml(root, 201)


def add(router: web.UrlDispatcher) -> None:
    collection = "{collection:osxconfigurationprofiles|mobiledeviceconfigurationprofiles}"
    path = f"/JSSResource/{collection}/{{key:id|name}}/{{value}}"
    router.add_get(path, get_profile)
    router.add_post(path, create_profile)
    router.add_put(path, update_profile)
