"""The guide's attribute mapping over Jamf's two inventories (docs/jamf.md §8.3, §8.4)."""

from __future__ import annotations

from typing import Any

from acmegate.policy.sources.jamf.mapping import (
    AttributeMapping,
    NameRef,
    as_text,
    identifiers,
    managed,
    mapping_problems,
)

COMPUTER: dict[str, Any] = {
    "id": "42",
    "udid": "54C764F5-7DC6-5CC0-B877-641BEDF8AF20",
    "general": {
        "name": "llama's MacBook Air",
        "remoteManagement": {"managed": True},
        "supervised": True,
        "site": {"id": "3", "name": "Zurich"},
        "lastContactTime": "2023-02-21T09:31:49.792Z",
    },
    "hardware": {"serialNumber": "C02ZC2QYLVDL", "model": "MacBook Air (M1, 2020)"},
    "userAndLocation": {
        "username": "llama",
        "realname": "Llama Smith",
        "email": "llama@example.com",
        "departmentId": "1",
        "buildingId": None,
    },
    "extensionAttributes": [{"name": "Cost Center", "values": ["CC-1234"]}],
    "groupMemberships": [
        {"groupId": "1", "groupName": "All Managed Clients", "smartGroup": True},
        {"groupId": "7", "groupName": "cert-eligible", "smartGroup": False},
    ],
}
PHONE: dict[str, Any] = {
    "mobileDeviceId": "1",
    "deviceType": "iOS",
    "general": {
        "udid": "00008120-001C1D8136500032",
        "displayName": "iPhone",
        "siteId": "-1",
        "managed": True,
        "supervised": False,
        "osVersion": "17.4.1",
    },
    "hardware": {"serialNumber": "DMQVGC0DHLF0"},
    "userAndLocation": {
        "username": "vicuna",
        "realName": "Vicuna Jones",
        "emailAddress": "vicuna@example.com",
        "departmentId": "2",
        "department": "Sales",
        "building": None,
    },
    "extensionAttributes": [{"name": "cost center", "value": ["CC-9"]}],
    "groups": [{"groupId": "4", "groupName": "Cert-Eligible", "smart": False}],
}

MAPPING = {
    "email": "userAndLocation.email",
    "realname": "userAndLocation.realName",
    "department": "userAndLocation.department",
    "building": "userAndLocation.building",
    "site": "general.site",
    "name": "general.name",
    "supervised": "general.supervised",
    "cost_center": "extensionAttributes.Cost Center",
    "last_contact": "general.lastContact",
    "os": "operatingSystem.version",
}


def test_one_path_reads_the_same_field_from_a_mac_and_an_iphone() -> None:
    mapping = AttributeMapping(MAPPING, ["Cert-Eligible"])
    mac = mapping.extract(COMPUTER, "computer")
    phone = mapping.extract(PHONE, "mobile_device")
    assert mac.attributes == {
        "email": "llama@example.com",
        "realname": "Llama Smith",  # mobile spelling realName, computer realname
        "site": "Zurich",
        "name": "llama's MacBook Air",
        "supervised": "true",
        "cost_center": "CC-1234",
        "last_contact": "2023-02-21T09:31:49.792Z",  # v4 lastContact, v1–v3 lastContactTime
    }
    assert phone.attributes == {
        "email": "vicuna@example.com",
        "realname": "Vicuna Jones",
        "department": "Sales",  # mobile records carry the name
        "name": "iPhone",
        "supervised": "false",
        "cost_center": "CC-9",
        "os": "17.4.1",
    }


def test_names_known_only_by_id_are_left_to_resolve() -> None:
    mapping = AttributeMapping(MAPPING, [])
    # A computer has departmentId only (no building: null), a phone its siteId.
    assert mapping.extract(COMPUTER, "computer").pending == [
        ("department", NameRef("department", "userAndLocation.departmentId"), "1")
    ]
    # Site -1 is Jamf's "None": nothing to resolve.
    assert mapping.extract(PHONE, "mobile_device").pending == []
    phone_in_site = {**PHONE, "general": {**PHONE["general"], "siteId": "3"}}
    assert mapping.extract(phone_in_site, "mobile_device").pending == [
        ("site", NameRef("site", "general.siteId"), "3")
    ]


def test_a_computer_in_no_site_has_no_site_attribute() -> None:
    record = {**COMPUTER, "general": {**COMPUTER["general"], "site": {"id": "-1", "name": "None"}}}
    assert "site" not in AttributeMapping(MAPPING, []).extract(record, "computer").attributes


def test_only_the_sections_the_mapping_and_groups_need_are_requested() -> None:
    mapping = AttributeMapping({"email": "userAndLocation.email"}, ["Cert-Eligible"])
    assert mapping.sections("computer") == {"GENERAL", "USER_AND_LOCATION", "GROUP_MEMBERSHIPS"}
    assert mapping.sections("mobile_device") == {"GENERAL", "USER_AND_LOCATION", "GROUPS"}
    bare = AttributeMapping({}, [])
    assert bare.sections("computer") == {"GENERAL"}
    assert bare.sections("computer", with_hardware=True) == {"GENERAL", "HARDWARE"}
    full = AttributeMapping(MAPPING, [])
    assert full.sections("computer") == {
        "GENERAL",
        "USER_AND_LOCATION",
        "EXTENSION_ATTRIBUTES",
        "OPERATING_SYSTEM",
    }
    # operatingSystem.version is general.osVersion on a phone.
    assert full.sections("mobile_device") == {
        "GENERAL",
        "USER_AND_LOCATION",
        "EXTENSION_ATTRIBUTES",
    }
    assert full.name_kinds == {"department", "building", "site"}


def test_only_the_configured_groups_are_reported_whatever_their_case() -> None:
    mapping = AttributeMapping({}, ["Cert-Eligible", "VPN"])
    assert mapping.member_of(COMPUTER, "computer") == ("Cert-Eligible",)
    assert mapping.member_of(PHONE, "mobile_device") == ("Cert-Eligible",)
    assert mapping.member_of({"groupMemberships": None}, "computer") == ()


def test_the_managed_flag_and_identifiers() -> None:
    assert managed(COMPUTER, "computer") and managed(PHONE, "mobile_device")
    # A null GENERAL section (LENIENT exception handling) is not a managed device.
    assert not managed({"general": None}, "computer")
    assert not managed({"general": {"managed": "true"}}, "mobile_device")
    assert identifiers(COMPUTER, "computer") == ("C02ZC2QYLVDL", COMPUTER["udid"])
    assert identifiers(PHONE, "mobile_device") == ("DMQVGC0DHLF0", "00008120-001C1D8136500032")


def test_values_become_text_and_structures_none() -> None:
    assert [as_text(v) for v in (True, False, 3, 2.5, "x", "", None, {}, [])] == [
        "true",
        "false",
        "3",
        "2.5",
        "x",
        None,
        None,
        None,
        None,
    ]


def test_mapping_problems_name_the_attribute() -> None:
    assert mapping_problems(MAPPING) == []
    assert mapping_problems(
        {"a": "nowhere.email", "b": "userAndLocation..email", "c d": "udid", "e": "udid.x"}
    ) == [
        "a: 'nowhere.email' is in no Jamf inventory section (paths start with diskEncryption, "
        "extensionAttributes, general, groupMemberships, groups, hardware, network, "
        "operatingSystem, purchasing, security, storage, userAndLocation, id or udid)",
        "b: 'userAndLocation..email' is not a dotted Jamf field path",
        "c d: attribute names may hold letters, digits, '_', '.' and '-'",
        "e: 'udid.x' is in no Jamf inventory section (paths start with diskEncryption, "
        "extensionAttributes, general, groupMemberships, groups, hardware, network, "
        "operatingSystem, purchasing, security, storage, userAndLocation, id or udid)",
    ]
