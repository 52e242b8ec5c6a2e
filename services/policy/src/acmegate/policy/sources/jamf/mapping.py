"""The guide's "Attribute Mapping": attribute name → Jamf field path, for Macs and iPhones alike.

A path is written as in the computer inventory (``userAndLocation.email``) or the mobile device
inventory (``userAndLocation.emailAddress``); the two inventories name several fields
differently (docs/jamf.md §8.4), so each path is translated for
the other kind. Three paths are names Jamf does not put in the record itself:

- ``userAndLocation.department`` / ``userAndLocation.building``: a computer carries only
  ``departmentId``/``buildingId``, resolved with ``GET /api/v1/departments/{id}`` and
  ``/buildings/{id}`` (docs/jamf.md §8.7); a mobile device carries the names;
- ``general.site`` (or ``general.site.name``): a computer carries the site's name, a mobile
  device only ``siteId``, resolved with ``GET /api/v1/sites`` (site ``-1`` is "None": no value).

``extensionAttributes.<Name>`` is the first value of the extension attribute of that name.
Only the sections these paths (and the groups) need are requested: each section costs Jamf
joins (docs/jamf.md §8.6).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from acmegate.policy.sources.base import DeviceKind

# First path segment → the section that fills it (docs/jamf.md §8.3, §8.4).
COMPUTER_SECTIONS: dict[str, str] = {
    "general": "GENERAL",
    "hardware": "HARDWARE",
    "userAndLocation": "USER_AND_LOCATION",
    "operatingSystem": "OPERATING_SYSTEM",
    "security": "SECURITY",
    "diskEncryption": "DISK_ENCRYPTION",
    "purchasing": "PURCHASING",
    "storage": "STORAGE",
    "extensionAttributes": "EXTENSION_ATTRIBUTES",
    "groupMemberships": "GROUP_MEMBERSHIPS",
}
MOBILE_SECTIONS: dict[str, str] = {
    "general": "GENERAL",
    "hardware": "HARDWARE",
    "userAndLocation": "USER_AND_LOCATION",
    "security": "SECURITY",
    "purchasing": "PURCHASING",
    "network": "NETWORK",
    "extensionAttributes": "EXTENSION_ATTRIBUTES",
    "groups": "GROUPS",
}
# Fields outside any section.
_TOP_LEVEL: dict[DeviceKind, frozenset[str]] = {
    "computer": frozenset({"id", "udid"}),
    "mobile_device": frozenset({"mobileDeviceId", "deviceType"}),
}
_SECTIONS: dict[DeviceKind, dict[str, str]] = {
    "computer": COMPUTER_SECTIONS,
    "mobile_device": MOBILE_SECTIONS,
}

# Computer path → mobile device path, for the fields both know under different names.
_COMPUTER_TO_MOBILE: dict[str, str] = {
    "id": "mobileDeviceId",
    "udid": "general.udid",
    "general.name": "general.displayName",
    "general.remoteManagement.managed": "general.managed",
    "general.reportDate": "general.lastInventoryUpdateDate",
    "general.lastContact": "general.lastContactDate",
    "general.lastContactTime": "general.lastContactDate",
    "userAndLocation.realname": "userAndLocation.realName",
    "userAndLocation.email": "userAndLocation.emailAddress",
    "userAndLocation.phone": "userAndLocation.phoneNumber",
    "operatingSystem.version": "general.osVersion",
    "operatingSystem.build": "general.osBuild",
    "hardware.macAddress": "hardware.wifiMacAddress",
}
_MOBILE_TO_COMPUTER: dict[str, str] = {
    mobile: computer
    for computer, mobile in _COMPUTER_TO_MOBILE.items()
    if computer != "general.lastContactTime"
}
# v4 renamed general.lastContactTime to general.lastContact (docs/jamf.md §8.3).
_COMPUTER_VERSION_ALIASES: dict[str, str] = {
    "general.lastContact": "general.lastContactTime",
    "general.lastContactTime": "general.lastContact",
}

NameKind = Literal["department", "building", "site"]

# Virtual name fields: per kind, either a direct path or (name kind, id path).
_NAMES: dict[str, dict[DeviceKind, str | tuple[NameKind, str]]] = {
    "userAndLocation.department": {
        "computer": ("department", "userAndLocation.departmentId"),
        "mobile_device": "userAndLocation.department",
    },
    "userAndLocation.building": {
        "computer": ("building", "userAndLocation.buildingId"),
        "mobile_device": "userAndLocation.building",
    },
    "general.site": {
        "computer": "general.site.name",
        "mobile_device": ("site", "general.siteId"),
    },
}
_NAMES["general.site.name"] = _NAMES["general.site"]

EXTENSION_PREFIX = "extensionAttributes."
_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
# Jamf's "no site" (docs/jamf.md §8.3: site {"id": "-1", "name": "None"}).
NO_SITE = "-1"


@dataclass(frozen=True, slots=True)
class NameRef:
    """A value that is the name of a department, building or site known by id."""

    kind: NameKind
    id_path: str


@dataclass(frozen=True, slots=True)
class Field:
    """Where one attribute's value lives in one kind of inventory record."""

    paths: tuple[str, ...] = ()  # tried in order; the first with a value wins
    name: NameRef | None = None
    extension_attribute: str | None = None
    # A computer's site name: no value when the site is Jamf's "None" (id -1).
    site: bool = False

    @property
    def roots(self) -> set[str]:
        paths = list(self.paths) + ([self.name.id_path] if self.name else [])
        return {path.split(".", 1)[0] for path in paths}


def _field(path: str, kind: DeviceKind) -> Field | None:
    """Where ``path`` (as the operator wrote it) lives in a ``kind`` record, if anywhere."""
    if path.startswith(EXTENSION_PREFIX) and len(path) > len(EXTENSION_PREFIX):
        return Field(extension_attribute=path[len(EXTENSION_PREFIX) :])
    named = _NAMES.get(path)
    if named is not None:
        target = named[kind]
        if isinstance(target, tuple):
            return Field(name=NameRef(*target))
        return Field(paths=(target,), site=target == "general.site.name")
    if kind == "computer":
        primary = _MOBILE_TO_COMPUTER.get(path, path)
        alternate = _COMPUTER_VERSION_ALIASES.get(primary)
        paths = (primary, alternate) if alternate else (primary,)
    else:
        paths = (_COMPUTER_TO_MOBILE.get(path, path),)
    root = paths[0].split(".", 1)[0]
    if root not in _SECTIONS[kind] and root not in _TOP_LEVEL[kind]:
        return None
    if root in _TOP_LEVEL[kind] and "." in paths[0]:
        return None
    return Field(paths=paths)


def mapping_problems(mapping: Mapping[str, str]) -> list[str]:
    """Why entries of an ``attribute_mapping`` cannot work, as ``<attribute>: problem``."""
    problems: list[str] = []
    for attribute, path in mapping.items():
        if not _ATTRIBUTE_NAME.match(attribute):
            problems.append(
                f"{attribute}: attribute names may hold letters, digits, '_', '.' and '-'"
            )
        if not path or any(not part for part in path.split(".")):
            problems.append(f"{attribute}: {path!r} is not a dotted Jamf field path")
            continue
        if _field(path, "computer") is None and _field(path, "mobile_device") is None:
            known = sorted(set(COMPUTER_SECTIONS) | set(MOBILE_SECTIONS))
            problems.append(
                f"{attribute}: {path!r} is in no Jamf inventory section (paths start with "
                f"{', '.join(known)}, id or udid)"
            )
    return problems


def _walk(record: Mapping[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def as_text(value: Any) -> str | None:
    """A Jamf value as an attribute string; ``None`` for nulls, empties and structures."""
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return text if text else None


def _extension_attribute(record: Mapping[str, Any], name: str) -> str | None:
    """The first value of the extension attribute ``name``, wherever the record lists it."""
    lists: list[Any] = [record.get("extensionAttributes")]
    lists += [
        section.get("extensionAttributes")
        for section in record.values()
        if isinstance(section, Mapping)
    ]
    folded = name.casefold()
    for items in lists:
        if not isinstance(items, list):
            continue
        for item in items:
            if not isinstance(item, Mapping) or str(item.get("name", "")).casefold() != folded:
                continue
            # Computers say ``values``, mobile devices ``value`` (both arrays).
            values = item.get("values", item.get("value"))
            if isinstance(values, list):
                return next((text for v in values if (text := as_text(v))), None)
            return as_text(values)
    return None


@dataclass(frozen=True, slots=True)
class Extracted:
    """The attributes read directly, and the names still to resolve (attribute → ref, id)."""

    attributes: dict[str, str]
    pending: list[tuple[str, NameRef, str]]


class AttributeMapping:
    """A source's attribute mapping and groups, compiled once per source."""

    def __init__(self, mapping: Mapping[str, str], groups: Sequence[str]) -> None:
        self.mapping = dict(mapping)
        self.groups = tuple(groups)
        self._folded_groups = {group.casefold(): group for group in self.groups}
        self._fields: dict[DeviceKind, dict[str, Field]] = {"computer": {}, "mobile_device": {}}
        for kind in ("computer", "mobile_device"):
            for attribute, path in self.mapping.items():
                field = _field(path, kind)
                if field is not None:
                    self._fields[kind][attribute] = field

    def sections(self, kind: DeviceKind, *, with_hardware: bool = False) -> frozenset[str]:
        """The sections a lookup of ``kind`` requests: GENERAL (the managed flag) and what
        the mapping and groups read; HARDWARE when the serial must be read back."""
        table = _SECTIONS[kind]
        wanted = {"GENERAL"}
        if with_hardware:
            wanted.add("HARDWARE")
        if self.groups:
            wanted.add("GROUP_MEMBERSHIPS" if kind == "computer" else "GROUPS")
        for field in self._fields[kind].values():
            if field.extension_attribute is not None:
                wanted.add("EXTENSION_ATTRIBUTES")
            wanted.update(table[root] for root in field.roots if root in table)
        return frozenset(wanted)

    @property
    def name_kinds(self) -> frozenset[NameKind]:
        """The kinds of names some lookup may have to resolve (for "Validate")."""
        return frozenset(
            field.name.kind
            for fields in self._fields.values()
            for field in fields.values()
            if field.name is not None
        )

    def extract(self, record: Mapping[str, Any], kind: DeviceKind) -> Extracted:
        """The mapped attributes of ``record``; names by id are left to resolve."""
        attributes: dict[str, str] = {}
        pending: list[tuple[str, NameRef, str]] = []
        for attribute, field in self._fields[kind].items():
            if field.extension_attribute is not None:
                value = _extension_attribute(record, field.extension_attribute)
            elif field.name is not None:
                identifier = as_text(_walk(record, field.name.id_path))
                if identifier is not None and identifier != NO_SITE:
                    pending.append((attribute, field.name, identifier))
                continue
            elif field.site and as_text(_walk(record, "general.site.id")) == NO_SITE:
                value = None
            else:
                value = next(
                    (text for path in field.paths if (text := as_text(_walk(record, path)))),
                    None,
                )
            if value is not None:
                attributes[attribute] = value
        return Extracted(attributes, pending)

    def member_of(self, record: Mapping[str, Any], kind: DeviceKind) -> tuple[str, ...]:
        """The configured groups the device is in (in configured order); no others."""
        items = record.get("groupMemberships" if kind == "computer" else "groups")
        names: set[str] = set()
        if isinstance(items, list):
            for item in items:
                if isinstance(item, Mapping) and isinstance(item.get("groupName"), str):
                    names.add(item["groupName"].casefold())
        return tuple(group for group in self.groups if group.casefold() in names)


def managed(record: Mapping[str, Any], kind: DeviceKind) -> bool:
    """The managed flag (docs/jamf.md §8.5: an unmanaged device keeps its record).

    A missing flag (a ``null`` section) counts as not managed: the gateway fails closed.
    """
    path = "general.remoteManagement.managed" if kind == "computer" else "general.managed"
    return _walk(record, path) is True


def identifiers(record: Mapping[str, Any], kind: DeviceKind) -> tuple[str | None, str | None]:
    """(serial number, UDID) as the record carries them (``None`` where absent)."""
    serial = as_text(_walk(record, "hardware.serialNumber"))
    udid = as_text(record.get("udid") if kind == "computer" else _walk(record, "general.udid"))
    return serial, udid
