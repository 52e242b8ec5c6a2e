"""Publishing a configuration profile to Jamf Pro through the Classic API (docs/profiles.md).

Jamf Pro documents two resources for it (Classic API reference, "osxconfigurationprofiles" and
"mobiledeviceconfigurationprofiles"):

- ``GET /JSSResource/<kind>/name/{name}``: the profile, 404 when none has that name;
- ``POST /JSSResource/<kind>/id/0``: create; ``PUT /JSSResource/<kind>/id/{id}``: update.

Both take and answer XML (root ``os_x_configuration_profile`` or ``configuration_profile``);
``general/payloads`` holds the .mobileconfig plist as text, ``scope`` the groups by name. The
profile's name is the key: publishing again finds the profile by name and updates it instead
of creating a second one (Jamf refuses a duplicate name with 409 anyway). Every request carries
the signal source's bearer token; 401 is retried once with a new token (as client.py does).
"""

from __future__ import annotations

import difflib
import html
import plistlib
import re
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from acmegate.common.config import seconds
from acmegate.common.config.model import JamfSourceConfig
from acmegate.policy.sources.jamf.auth import TokenSource
from acmegate.policy.sources.jamf.errors import JamfError, JamfFailure
from acmegate.policy.sources.jamf.http import JamfHttp, JamfResponse
from acmegate.policy.sources.jamf.lookup import ssl_context, token_source

ProfileKind = Literal["osx", "mobiledevice"]
Action = Literal["create", "update", "unchanged"]
_TAG = re.compile(r"<[^>]*>")


@dataclass(frozen=True)
class _Kind:
    path: str
    root: str
    label: str
    privilege_noun: str
    group_list: str
    group: str
    all_devices: str
    method_tag: str
    level: str


KINDS: dict[ProfileKind, _Kind] = {
    "osx": _Kind(
        "osxconfigurationprofiles",
        "os_x_configuration_profile",
        "macOS configuration profile",
        "macOS Configuration Profiles",
        "computer_groups",
        "computer_group",
        "all_computers",
        "distribution_method",
        "System",
    ),
    "mobiledevice": _Kind(
        "mobiledeviceconfigurationprofiles",
        "configuration_profile",
        "mobile device configuration profile",
        "Mobile Device Configuration Profiles",
        "mobile_device_groups",
        "mobile_device_group",
        "all_mobile_devices",
        "deployment_method",
        "Device Level",
    ),
}


def privileges(kind: ProfileKind) -> list[str]:
    """The Jamf privileges publishing a profile of ``kind`` needs."""
    noun = KINDS[kind].privilege_noun
    return [f"Read {noun}", f"Create {noun}", f"Update {noun}"]


@dataclass(frozen=True)
class DesiredProfile:
    """What the profile in Jamf should be."""

    kind: ProfileKind
    name: str
    description: str
    payloads: bytes  # the unsigned .mobileconfig (Jamf signs what it pushes)
    groups: tuple[str, ...]


@dataclass(frozen=True)
class Published:
    """The profile Jamf holds (or ``None`` fields when there is none)."""

    id: int
    description: str
    payloads: str
    groups: tuple[str, ...]


@dataclass(frozen=True)
class Change:
    """What publishing did (or, in a dry run, would do) to one profile."""

    kind: ProfileKind
    name: str
    action: Action
    id: int | None
    diff: list[str]

    def describe(self, dry_run: bool) -> str:
        label = KINDS[self.kind].label
        ident = f" (id {self.id})" if self.id is not None else ""
        if self.action == "unchanged":
            return f"{label} {self.name!r}{ident}: unchanged"
        verb = {"create": "created", "update": "updated"}[self.action]
        if dry_run:
            verb = f"would be {verb}"
        return f"{label} {self.name!r}{ident}: {verb}"


def render(desired: DesiredProfile, *, redeploy_all: bool) -> bytes:
    """The Classic API XML of ``desired``."""
    spec = KINDS[desired.kind]
    root = ET.Element(spec.root)
    general = ET.SubElement(root, "general")
    for tag, text in (
        ("name", desired.name),
        ("description", desired.description),
        ("level", spec.level),
        (spec.method_tag, "Install Automatically"),
        # A changed payload (a rotated token, a new SSID) must reach every device in scope.
        ("redeploy_on_update", "All" if redeploy_all else "Newly Assigned"),
        # ElementTree escapes the plist's markup: it travels as text (Jamf's own format).
        ("payloads", desired.payloads.decode()),
    ):
        ET.SubElement(general, tag).text = text
    scope = ET.SubElement(root, "scope")
    ET.SubElement(scope, spec.all_devices).text = "false"
    groups = ET.SubElement(scope, spec.group_list)
    for name in desired.groups:
        ET.SubElement(ET.SubElement(groups, spec.group), "name").text = name
    text = ET.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="UTF-8"?>' + text).encode()


def _xml_body(response: JamfResponse, what: str) -> ET.Element:
    try:
        return ET.fromstring(response.raw)  # noqa: S314 - the configured Jamf's answer
    except ET.ParseError as exc:
        raise JamfError(JamfFailure.PROTOCOL, f"{what}: the answer is not XML: {exc}") from exc


def parse(kind: ProfileKind, response: JamfResponse) -> Published:
    """The profile of a Classic API GET answer."""
    spec = KINDS[kind]
    root = _xml_body(response, f"GET {spec.path}")
    general = root.find("general")
    ident = general.findtext("id") if general is not None else None
    if general is None or ident is None or not ident.strip().isdigit():
        raise JamfError(JamfFailure.PROTOCOL, f"GET {spec.path}: no general/id in the answer")
    names = root.findall(f"scope/{spec.group_list}/{spec.group}/name")
    return Published(
        int(ident),
        general.findtext("description") or "",
        general.findtext("payloads") or "",
        tuple(sorted(n.text or "" for n in names)),
    )


def _plist_lines(text: str | bytes) -> list[str]:
    # Compare payloads, not formatting: Jamf may re-serialise the plist it stores.
    raw = text.encode() if isinstance(text, str) else text
    try:
        normal = plistlib.dumps(plistlib.loads(raw), sort_keys=True).decode()
    except Exception:  # noqa: BLE001 - whatever Jamf holds, show it as it is
        normal = raw.decode(errors="replace")
    return normal.splitlines()


def difference(desired: DesiredProfile, current: Published | None) -> list[str]:
    """Unified-diff lines from ``current`` to ``desired`` (empty when they agree)."""
    old = (
        []
        if current is None
        else [
            f"description: {current.description}",
            *(f"scope group: {g}" for g in current.groups),
            *_plist_lines(current.payloads),
        ]
    )
    new = [
        f"description: {desired.description}",
        *(f"scope group: {g}" for g in sorted(desired.groups)),
        *_plist_lines(desired.payloads),
    ]
    if old == new:
        return []
    label = KINDS[desired.kind].path
    return list(
        difflib.unified_diff(old, new, f"jamf:{label}/{desired.name}", "acmegate", lineterm="", n=2)
    )


class ProfilePublisher:
    """Creates or updates configuration profiles in one Jamf Pro server."""

    def __init__(self, http: JamfHttp, tokens: TokenSource) -> None:
        self.http = http
        self.tokens = tokens

    @classmethod
    def for_source(cls, config: JamfSourceConfig) -> ProfilePublisher:
        """A publisher with the URL, credentials and CA bundle of a Jamf signal source."""
        http = JamfHttp(
            config.url,
            source=config.name,
            timeout=float(seconds(config.timeout)),
            max_connections=config.max_connections,
            retries=config.retries,
            ssl_context=ssl_context(config),
        )
        return cls(http, token_source(config, http, time.monotonic))

    async def close(self) -> None:
        """End the token (a user token is invalidated) and close the connections."""
        try:
            await self.tokens.close()
        finally:
            await self.http.close()

    async def _send(self, method: str, path: str, data: bytes | None = None) -> JamfResponse:
        headers = {"Accept": "application/xml"}
        if data is not None:
            headers["Content-Type"] = "application/xml"
        response: JamfResponse | None = None
        for _ in range(2):
            token = await self.tokens.token()
            response = await self.http.request(
                method,
                path,
                data=data,
                headers={**headers, "Authorization": f"Bearer {token}"},
                # A repeated POST could create a second profile: only reads and PUTs retry.
                retry=method != "POST",
            )
            if response.status != 401:
                break
            self.tokens.discard(token)
        assert response is not None
        return response

    def _refused(
        self, kind: ProfileKind, method: str, path: str, response: JamfResponse
    ) -> JamfError:
        if response.status == 401:
            return JamfError(
                JamfFailure.CREDENTIALS, f"{method} {path} answered 401 even with a new token"
            )
        if response.status == 403:
            needed = ", ".join(repr(p) for p in privileges(kind))
            return JamfError(
                JamfFailure.PRIVILEGE,
                f"{method} {path} answered 403: the API role needs {needed}",
            )
        # Classic API errors are HTML status pages; keep their words only.
        detail = " ".join(html.unescape(_TAG.sub(" ", response.text)).split())
        return JamfError(
            JamfFailure.PROTOCOL, f"{method} {path} answered HTTP {response.status}: {detail}"
        )

    async def current(self, desired: DesiredProfile) -> Published | None:
        """The profile of that name Jamf holds, if any."""
        path = f"/JSSResource/{KINDS[desired.kind].path}/name/{quote(desired.name, safe='')}"
        response = await self._send("GET", path)
        if response.status == 404:
            return None
        if response.status != 200:
            raise self._refused(desired.kind, "GET", path, response)
        return parse(desired.kind, response)

    async def publish(self, desired: DesiredProfile, *, dry_run: bool = False) -> Change:
        """Create or update the profile (nothing is sent but reads in a dry run)."""
        current = await self.current(desired)
        diff = difference(desired, current)
        if current is not None and not diff:
            return Change(desired.kind, desired.name, "unchanged", current.id, [])
        action: Action = "create" if current is None else "update"
        ident = None if current is None else current.id
        if dry_run:
            return Change(desired.kind, desired.name, action, ident, diff)
        payload_changed = current is not None and _plist_lines(current.payloads) != _plist_lines(
            desired.payloads
        )
        body = render(desired, redeploy_all=payload_changed)
        spec = KINDS[desired.kind]
        method, path = (
            ("POST", f"/JSSResource/{spec.path}/id/0")
            if current is None
            else ("PUT", f"/JSSResource/{spec.path}/id/{current.id}")
        )
        response = await self._send(method, path, body)
        if response.status not in (200, 201):
            raise self._refused(desired.kind, method, path, response)
        answered = _xml_body(response, f"{method} {path}").findtext("id")
        if answered is None or not answered.strip().isdigit():
            raise JamfError(JamfFailure.PROTOCOL, f"{method} {path}: no id in the answer")
        return Change(desired.kind, desired.name, action, int(answered), diff)
