"""The fake Jamf Pro server's inventory file, and the JSON records Jamf would send for it.

The YAML (docs/jamf.md "The fake Jamf Pro server") lists computers and mobile devices with the
fields a lookup reads, the groups, departments, buildings and sites, the API clients and users
(with passwords and privileges) and the token lifetimes. Records are rendered in the shapes
of the 11.30.1 schema (``ComputerInventoryV4``/``ComputerInventory`` and
``MobileDeviceIosInventory``, docs/jamf.md §8.3, §8.4), every section present, so the server
can blank out the ones a request did not ask for. ``overrides`` deep-merges raw JSON into a
record (a ``null`` field, an extra key) to mimic real data.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec
import yaml

# The privileges of the Jamf Pro API a lookup (or a profile publication) may need.
ALL_PRIVILEGES = (
    "Read Computers",
    "Read Mobile Devices",
    "Read Departments",
    "Read Buildings",
    "Read Sites",
    "Read Smart Computer Groups",
    "Read Static Computer Groups",
    "Read Smart Mobile Device Groups",
    "Read Static Mobile Device Groups",
    # Classic API configuration profiles (``acmegate platform publish``).
    "Create macOS Configuration Profiles",
    "Read macOS Configuration Profiles",
    "Update macOS Configuration Profiles",
    "Create Mobile Device Configuration Profiles",
    "Read Mobile Device Configuration Profiles",
    "Update Mobile Device Configuration Profiles",
)


class _Struct(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class ApiClient(_Struct):
    """A Jamf Pro API client (Settings → API roles and clients)."""

    client_id: str
    client_secret: str
    # The API role ids the client holds (``scope: api-role:N``).
    roles: list[int] = msgspec.field(default_factory=lambda: [1])
    # Seconds; the client's "Access Token Lifetime" (default: the inventory's).
    lifetime: int | None = None
    # None: every privilege of ALL_PRIVILEGES.
    privileges: list[str] | None = None
    enabled: bool = True


class User(_Struct):
    """A Jamf Pro user account that may ask for bearer tokens."""

    username: str
    password: str
    lifetime: int | None = None
    privileges: list[str] | None = None


class Named(_Struct):
    id: str
    name: str


class Group(_Struct):
    id: str
    name: str
    smart: bool = False
    description: str = ""


class Groups(_Struct):
    computer: list[Group] = msgspec.field(default_factory=list)
    mobile_device: list[Group] = msgspec.field(default_factory=list)


class _Device(_Struct):
    id: str
    serial_number: str
    udid: str
    managed: bool = True
    supervised: bool = True
    username: str | None = None
    realname: str | None = None
    email: str | None = None
    position: str | None = None
    phone: str | None = None
    department_id: str | None = None
    building_id: str | None = None
    room: str | None = None
    site_id: str = "-1"
    asset_tag: str | None = None
    management_id: str | None = None
    # Group names (of ``groups.computer`` / ``groups.mobile_device``; unknown names are added).
    groups: list[str] = msgspec.field(default_factory=list)
    extension_attributes: dict[str, str] = msgspec.field(default_factory=dict)
    overrides: dict[str, Any] = msgspec.field(default_factory=dict)


class Computer(_Device):
    name: str = "MacBook Air"
    platform: str = "Mac"
    model: str = "MacBook Air (M1, 2020)"
    model_identifier: str = "MacBookAir10,1"
    apple_silicon: bool = True
    os_version: str = "15.5"
    os_build: str = "24F74"


class MobileDevice(_Device):
    name: str = "iPhone"
    device_type: Literal["iOS", "tvOS", "watchOS", "visionOS"] = "iOS"
    model: str = "iPhone 15"
    model_identifier: str = "iPhone15,4"
    model_number: str = "MTLT3LL"
    os_version: str = "17.4.1"
    os_build: str = "21E236"
    ownership: str = "Institutional"


class Inventory(_Struct):
    """Everything the fake server knows (the YAML file's top level)."""

    version: str = "11.30.1-t1718745216"
    # Which /api/vN/computers-inventory exist (others answer 404, like an older Jamf).
    computer_inventory_versions: list[int] = msgspec.field(default_factory=lambda: [1, 2, 3, 4])
    # Which OAuth token paths exist (/api/v1/oauth/token is absent before ~11.2x).
    oauth_paths: list[str] = msgspec.field(
        default_factory=lambda: ["/api/oauth/token", "/api/v1/oauth/token"]
    )
    user_token_lifetime: int = 1800
    client_token_lifetime: int = 60
    api_clients: list[ApiClient] = msgspec.field(default_factory=list)
    users: list[User] = msgspec.field(default_factory=list)
    departments: list[Named] = msgspec.field(default_factory=list)
    buildings: list[Named] = msgspec.field(default_factory=list)
    sites: list[Named] = msgspec.field(default_factory=list)
    groups: Groups = msgspec.field(default_factory=Groups)
    computers: list[Computer] = msgspec.field(default_factory=list)
    mobile_devices: list[MobileDevice] = msgspec.field(default_factory=list)


class InventoryError(ValueError):
    """The inventory file is unreadable or invalid; the message names the key."""


def parse_inventory(data: Mapping[str, Any] | None) -> Inventory:
    """An :class:`Inventory` from already-loaded YAML/JSON data."""
    try:
        return msgspec.convert(data or {}, Inventory)
    except msgspec.ValidationError as exc:
        raise InventoryError(str(exc)) from exc


def load_inventory(path: str | Path) -> Inventory:
    """Read and validate an inventory YAML file."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InventoryError(f"{path}: {exc}") from exc
    try:
        return parse_inventory(data)
    except InventoryError as exc:
        raise InventoryError(f"{path}: {exc}") from exc


def deep_merge(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` merged in (mappings recursively; ``None`` sets null)."""
    merged = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


# Fixed timestamps: the fake is about shapes, not about when.
_REPORTED = "2026-04-09T13:25:05.789Z"
_CONTACT = "2026-04-09T13:31:49.792Z"
_ENROLLED = "2026-02-15T13:47:10.368Z"
_EXPIRES = "2028-02-15T13:46:35Z"


def _site(inventory: Inventory, site_id: str) -> dict[str, str]:
    name = next((s.name for s in inventory.sites if s.id == site_id), "None")
    return {"id": site_id, "name": name}


def _group(groups: list[Group], name: str) -> Group:
    found = next((g for g in groups if g.name.casefold() == name.casefold()), None)
    if found is None:
        found = Group(id=str(1000 + len(groups)), name=name)
        groups.append(found)
    return found


def _computer_eas(device: _Device) -> list[dict[str, Any]]:
    return [
        {
            "definitionId": str(index),
            "name": name,
            "description": None,
            "enabled": True,
            "multiValue": False,
            "values": [value],
            "dataType": "STRING",
            "options": [],
            "inputType": "TEXT",
        }
        for index, (name, value) in enumerate(device.extension_attributes.items(), start=1)
    ]


def computer_record(inventory: Inventory, computer: Computer, version: int) -> dict[str, Any]:
    """The full ``/api/v{version}/computers-inventory`` record of ``computer``."""
    general: dict[str, Any] = {
        "name": computer.name,
        "lastIpAddress": "203.0.113.7",
        "lastReportedIpV4": "192.168.1.38",
        "lastReportedIpV6": None,
        "jamfBinaryVersion": "11.30.1-t1718745216",
        "platform": computer.platform,
        "barcode1": None,
        "barcode2": None,
        "assetTag": computer.asset_tag,
        "remoteManagement": {
            "managed": computer.managed,
            "managementUsername": "jamfadmin" if computer.managed else None,
        },
        "supervised": computer.supervised,
        "mdmCapable": {
            "capable": computer.managed,
            "capableUsers": [computer.username] if computer.username else [],
            "userManagementInfo": [],
        },
        "reportDate": _REPORTED,
        "lastCloudBackupDate": None,
        "lastEnrolledDate": _ENROLLED,
        "mdmProfileExpiration": _EXPIRES,
        "initialEntryDate": "2026-02-15",
        "distributionPoint": None,
        "enrollmentMethod": {"id": "9", "objectName": None, "objectType": "User-initiated"},
        "site": _site(inventory, computer.site_id),
        "itunesStoreAccountActive": False,
        "enrolledViaAutomatedDeviceEnrollment": True,
        "userApprovedMdm": True,
        "declarativeDeviceManagementEnabled": True,
        "extensionAttributes": [],
        "managementId": computer.management_id or f"mgmt-{computer.id}",
    }
    if version >= 4:
        # v3 → v4 renamed lastContactTime and dropped lastReportedIp (docs/jamf.md §8.3).
        general["lastContact"] = _CONTACT
        general["lastCheckIn"] = _CONTACT
    else:
        general["lastContactTime"] = _CONTACT
        general["lastReportedIp"] = "192.168.1.38"
    groups = [_group(inventory.groups.computer, name) for name in computer.groups]
    record: dict[str, Any] = {
        "id": computer.id,
        "udid": computer.udid,
        "general": general,
        "diskEncryption": {
            "bootPartitionEncryptionDetails": None,
            "individualRecoveryKeyValidityStatus": "VALID",
            "institutionalRecoveryKeyPresent": False,
            "diskEncryptionConfigurationName": None,
            "fileVault2Enabled": True,
            "fileVault2EnabledUserNames": [computer.username] if computer.username else [],
            "fileVault2EligibilityMessage": "Eligible",
        },
        "purchasing": {
            "leased": False,
            "purchased": True,
            "poNumber": None,
            "vendor": None,
            "appleCareId": None,
            "lifeExpectancy": 4,
            "extensionAttributes": [],
        },
        "applications": [],
        "storage": {"bootDriveAvailableSpaceMegabytes": 120000, "disks": []},
        "userAndLocation": {
            "username": computer.username,
            "realname": computer.realname,
            "email": computer.email,
            "position": computer.position,
            "phone": computer.phone,
            "departmentId": computer.department_id,
            "buildingId": computer.building_id,
            "room": computer.room,
            "extensionAttributes": [],
        },
        "configurationProfiles": [],
        "printers": [],
        "services": [],
        "hardware": {
            "make": "Apple",
            "model": computer.model,
            "modelIdentifier": computer.model_identifier,
            "serialNumber": computer.serial_number,
            "macAddress": "00:00:00:00:00:00",
            "appleSilicon": computer.apple_silicon,
            "provisioningUdid": computer.udid,
            "extensionAttributes": [],
        },
        "localUserAccounts": [],
        "certificates": [],
        "attachments": [],
        "packageReceipts": {"installedByJamfPro": [], "installedByInstallerSwu": [], "cached": []},
        "security": {
            "sipStatus": "ENABLED",
            "gatekeeperStatus": "APP_STORE_AND_IDENTIFIED_DEVELOPERS",
            "activationLockEnabled": False,
            "recoveryLockEnabled": False,
            "firewallEnabled": True,
            "secureBootLevel": "FULL_SECURITY",
            "externalBootLevel": "NOT_SUPPORTED",
        },
        "operatingSystem": {
            "name": "macOS",
            "version": computer.os_version,
            "build": computer.os_build,
            "supplementalBuildVersion": None,
            "rapidSecurityResponse": None,
            "activeDirectoryStatus": "Not Bound",
            "fileVault2Status": "BOOT_ENCRYPTED",
            "softwareUpdateDeviceId": "J313AP",
            "extensionAttributes": [],
        },
        "licensedSoftware": [],
        "ibeacons": [],
        "softwareUpdates": [],
        "extensionAttributes": _computer_eas(computer),
        "contentCaching": None,
        "groupMemberships": [
            {
                "groupId": group.id,
                "groupName": group.name,
                "groupDescription": group.description,
                "smartGroup": group.smart,
            }
            for group in groups
        ],
    }
    if version == 1:
        # v1 → v2 removed fonts and plugins (docs/jamf.md §8.3).
        record["plugins"] = []
        record["fonts"] = []
    return deep_merge(record, computer.overrides)


def _name_of(items: list[Named], identifier: str | None) -> str | None:
    if identifier is None:
        return None
    return next((item.name for item in items if item.id == identifier), None)


def mobile_record(inventory: Inventory, device: MobileDevice) -> dict[str, Any]:
    """The full ``/api/v2/mobile-devices/detail`` record (``MobileDeviceIosInventory``)."""
    groups = [_group(inventory.groups.mobile_device, name) for name in device.groups]
    record: dict[str, Any] = {
        "mobileDeviceId": device.id,
        "deviceType": device.device_type,
        "hardware": {
            "capacityMb": 262144,
            "availableSpaceMb": 120000,
            "usedSpacePercentage": 54,
            "batteryLevel": 87,
            "batteryHealth": "NORMAL",
            "serialNumber": device.serial_number,
            "wifiMacAddress": "ee:00:7c:f0:e5:ff",
            "bluetoothMacAddress": "ee:00:7c:f0:e5:fe",
            "modemFirmwareVersion": None,
            "model": device.model,
            "modelIdentifier": device.model_identifier,
            "modelNumber": device.model_number,
            "bluetoothLowEnergyCapable": True,
            "deviceId": None,
            "extensionAttributes": [],
        },
        "userAndLocation": {
            "username": device.username,
            "realName": device.realname,
            "emailAddress": device.email,
            "position": device.position,
            "phoneNumber": device.phone,
            "departmentId": device.department_id,
            "buildingId": device.building_id,
            "room": device.room,
            "building": _name_of(inventory.buildings, device.building_id),
            "department": _name_of(inventory.departments, device.department_id),
            "extensionAttributes": [],
        },
        "applications": [],
        "certificates": [],
        "profiles": [],
        "userProfiles": [],
        "provisioningProfiles": [],
        "sharedUsers": [],
        "ebooks": [],
        "serviceSubscriptions": [],
        "purchasing": {"purchased": True, "leased": False, "extensionAttributes": []},
        "security": {"dataProtected": True, "passcodePresent": True, "activationLockEnabled": True},
        "network": {"cellularTechnology": "GSM", "roaming": False},
        "groups": [
            {
                "groupId": group.id,
                "groupName": group.name,
                "groupDescription": group.description,
                "smart": group.smart,
            }
            for group in groups
        ],
        "extensionAttributes": [
            {"id": str(index), "name": name, "type": "STRING", "value": [value]}
            for index, (name, value) in enumerate(device.extension_attributes.items(), start=1)
        ],
        "general": {
            "udid": device.udid,
            "displayName": device.name,
            "assetTag": device.asset_tag,
            "siteId": device.site_id,
            "lastInventoryUpdateDate": _REPORTED,
            "lastContactDate": _CONTACT,
            "osVersion": device.os_version,
            "osBuild": device.os_build,
            "osSupplementalBuildVersion": None,
            "osRapidSecurityResponse": None,
            "softwareUpdateDeviceId": "D83AP",
            "ipAddress": "10.0.0.1",
            "managed": device.managed,
            "supervised": device.supervised,
            "deviceOwnershipType": device.ownership,
            "enrollmentSessionTokenValid": False,
            "lastEnrolledDate": _ENROLLED,
            "mdmProfileExpirationDate": _EXPIRES,
            "timeZone": "Europe/Zurich",
            "declarativeDeviceManagementEnabled": True,
            "managementId": device.management_id or f"mgmt-m{device.id}",
            "extensionAttributes": [],
        },
    }
    return deep_merge(record, device.overrides)


def mobile_single(inventory: Inventory, device: MobileDevice) -> dict[str, Any]:
    """``GET /api/v2/mobile-devices/{id}/detail`` (``MobileDeviceDetailsGetV2``, docs/jamf.md
    §8.4)."""
    kind = device.device_type.lower()
    groups = [_group(inventory.groups.mobile_device, name) for name in device.groups]
    return {
        "id": device.id,
        "name": device.name,
        "serialNumber": device.serial_number,
        "udid": device.udid,
        "managed": device.managed,
        "assetTag": device.asset_tag,
        "osVersion": device.os_version,
        "osBuild": device.os_build,
        "lastInventoryUpdateTimestamp": _REPORTED,
        "lastEnrollmentTimestamp": _ENROLLED,
        "mdmProfileExpirationTimestamp": _EXPIRES,
        "deviceOwnershipLevel": device.ownership,
        "site": _site(inventory, device.site_id),
        "location": {
            "username": device.username,
            "realName": device.realname,
            "emailAddress": device.email,
            "position": device.position,
            "phoneNumber": device.phone,
            "departmentId": device.department_id,
            "buildingId": device.building_id,
            "room": device.room,
        },
        "type": kind if kind in ("ios", "tvos", "watchos", "visionos") else "unknown",
        "ios": {
            "model": device.model,
            "modelIdentifier": device.model_identifier,
            "modelNumber": device.model_number,
            "supervised": device.supervised,
        }
        if kind == "ios"
        else None,
        "managementId": device.management_id or f"mgmt-m{device.id}",
        "groups": [
            {
                "groupId": g.id,
                "groupName": g.name,
                "groupDescription": g.description,
                "smart": g.smart,
            }
            for g in groups
        ],
    }
