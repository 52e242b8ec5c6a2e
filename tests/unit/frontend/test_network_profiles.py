"""A platform profile with trust, Wi-Fi, wired 802.1X and VPN payloads next to the ACME one:
every payload has the keys, types and allowed values of Apple's profile schemas (the facts in
tests/data/apple_profile_payloads.json), and every UUID reference resolves inside the profile."""

from __future__ import annotations

import datetime
import json
import plistlib
import re
import subprocess
from pathlib import Path
from typing import Any

import msgspec
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from acmegate.common.config.model import DeviceManagementPlatformConfig
from acmegate.common.errors import AcmeError
from acmegate.frontend.profiles import build_profile

FACTS = json.loads((Path(__file__).parents[2] / "data" / "apple_profile_payloads.json").read_text())
UUID = re.compile(r"^[0-9A-Za-z]{8}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{12}$")
DIRECTORY = "https://acme.corp.example/acme/directory"
_PLIST_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "boolean": bool,
    "data": bytes,
    "array": list,
    "dictionary": dict,
    "uuid": str,
}


def _ca(name: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    signer_cert, signer_key = issuer if issuer else (None, key)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer_cert.subject if signer_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(signer_key, hashes.SHA256())
    )
    return certificate, key


@pytest.fixture
def trust_files(tmp_path: Path) -> list[str]:
    root = _ca("Corp Root CA", None)
    issuing = _ca("Corp Devices CA", root)
    radius_root = _ca("RADIUS Server Root", None)
    chain = tmp_path / "chain.pem"
    chain.write_bytes(
        b"".join(c.public_bytes(serialization.Encoding.PEM) for c, _ in (root, issuing))
    )
    radius = tmp_path / "radius-ca.pem"
    radius.write_bytes(radius_root[0].public_bytes(serialization.Encoding.PEM))
    return [str(chain), str(radius)]


def _platform(trust: list[str], **network: Any) -> DeviceManagementPlatformConfig:
    return msgspec.convert(
        {
            "name": "macs",
            "profile": {"client_identifier": "$SERIALNUMBER", "trust": trust, **network},
        },
        DeviceManagementPlatformConfig,
    )


NETWORK = {
    "wifi": {
        "ssid": "Corp-Secure",
        "encryption": "WPA3",
        "trusted_server_names": ["radius.corp.example"],
        "tls_minimum_version": "1.2",
    },
    "ethernet": {"trusted_server_names": ["radius.corp.example"]},
    "vpn": {
        "name": "Corp VPN",
        "server": "vpn.corp.example",
        "remote_identifier": "vpn.corp.example",
    },
}


def _check(where: str, value: Any, facts: dict[str, Any], refs: list[tuple[str, str, str]]) -> None:
    """``value`` against the key facts of one dictionary; collects (where, kind, uuid)."""
    for key, fact in facts.items():
        if fact.get("required"):
            assert key in value, f"{where}: required key {key} missing"
    for key, item in value.items():
        assert key in facts, f"{where}: {key} is not a key of Apple's schema"
        _check_value(f"{where}.{key}", item, facts[key], refs)


def _check_value(where: str, item: Any, fact: dict[str, Any], refs: list[Any]) -> None:
    kind = fact["type"]
    assert isinstance(item, _PLIST_TYPES[kind]), f"{where}: {item!r} is not <{kind}>"
    if kind in ("integer", "string") and isinstance(item, bool):
        raise AssertionError(f"{where}: a boolean where <{kind}> is expected")
    if kind == "uuid":
        assert UUID.match(item), f"{where}: {item!r} is not a UUID"
    if "values" in fact:
        assert item in fact["values"], f"{where}: {item!r} not in {fact['values']}"
    if "reference" in fact:
        refs.append((where, fact["reference"], item))
    if "schema" in fact:
        _check(where, item, FACTS["dictionaries"][fact["schema"]], refs)
    if "items" in fact:
        for index, element in enumerate(item):
            _check_value(f"{where}[{index}]", element, fact["items"], refs)


def test_every_payload_matches_apples_schema_and_every_reference_resolves(
    trust_files: list[str],
) -> None:
    profile = build_profile(_platform(trust_files, **NETWORK), directory_url=DIRECTORY, token=None)
    document = plistlib.loads(profile.data)
    payloads = document["PayloadContent"]
    types = [p["PayloadType"] for p in payloads]
    assert types == [
        "com.apple.security.acme",
        "com.apple.security.root",
        "com.apple.security.pkcs1",
        "com.apple.security.root",
        "com.apple.wifi.managed",
        "com.apple.firstactiveethernet.managed",
        "com.apple.vpn.managed",
    ]
    refs: list[tuple[str, str, str]] = []
    for payload in payloads:
        facts = {**FACTS["common"], **FACTS["payloads"][payload["PayloadType"]]}
        _check(payload["PayloadType"], payload, facts, refs)
    uuids = [p["PayloadUUID"] for p in payloads]
    assert len(set(uuids)) == len(uuids), "each payload has its own UUID"
    by_uuid = {p["PayloadUUID"]: p["PayloadType"] for p in payloads}
    anchors = {"com.apple.security.root", "com.apple.security.pkcs1"}
    for where, kind, uuid in refs:
        assert uuid in by_uuid, f"{where}: {uuid} names no payload of this profile"
        wanted = {"com.apple.security.acme"} if kind == "identity" else anchors
        assert by_uuid[uuid] in wanted, f"{where}: {uuid} is a {by_uuid[uuid]}"
    assert len([r for r in refs if r[1] == "identity"]) == 3  # Wi-Fi, Ethernet, VPN
    assert len([r for r in refs if r[1] == "anchor"]) == 6  # 3 anchors × (Wi-Fi, Ethernet)
    wifi = payloads[4]
    assert wifi["EAPClientConfiguration"]["AcceptEAPTypes"] == [13]  # EAP-TLS
    assert payloads[6]["IKEv2"]["CertificateType"] == "ECDSA384"  # the P-384 ACME key


def test_the_trust_payloads_carry_the_certificates_as_der(trust_files: list[str]) -> None:
    document = plistlib.loads(
        build_profile(_platform(trust_files), directory_url=DIRECTORY, token=None).data
    )
    contents = [p["PayloadContent"] for p in document["PayloadContent"][1:]]
    names = [x509.load_der_x509_certificate(c).subject.rfc4514_string() for c in contents]
    assert names == ["CN=Corp Root CA", "CN=Corp Devices CA", "CN=RADIUS Server Root"]


def test_uuids_are_stable_so_a_republished_profile_replaces_the_old_one(
    trust_files: list[str],
) -> None:
    first = build_profile(_platform(trust_files, **NETWORK), directory_url=DIRECTORY, token=None)
    again = build_profile(_platform(trust_files, **NETWORK), directory_url=DIRECTORY, token=None)
    assert first.data == again.data


def test_jamf_form_lists_every_payload(trust_files: list[str]) -> None:
    profile = build_profile(_platform(trust_files, **NETWORK), directory_url=DIRECTORY, token=None)
    labels = dict(profile.jamf_form)
    assert labels["Wi-Fi: SSID"] == "Corp-Secure"
    assert labels["Wi-Fi: Security Type"] == "WPA3 Enterprise"
    assert labels["802.1X: Interface"] == "First Active Ethernet"
    assert labels["VPN: Server"] == "vpn.corp.example"


def test_an_unreadable_trust_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(AcmeError, match=r"nope\.pem"):
        build_profile(_platform([missing]), directory_url=DIRECTORY, token=None)


def test_an_ssid_longer_than_32_bytes_is_refused() -> None:
    with pytest.raises(msgspec.ValidationError, match="ssid"):
        _platform([], wifi={"ssid": "x" * 33})


def test_the_signed_profile_verifies_with_openssl(trust_files: list[str], tmp_path: Path) -> None:
    signer_cert, signer_key = _ca("Profile Signer", None)
    profile = build_profile(
        _platform(trust_files, **NETWORK),
        directory_url=DIRECTORY,
        token=None,
        signer=(signer_cert, signer_key, []),
    )
    signed = tmp_path / "p.mobileconfig"
    signed.write_bytes(profile.data)
    ca = tmp_path / "signer.pem"
    ca.write_bytes(signer_cert.public_bytes(serialization.Encoding.PEM))
    out = subprocess.run(
        [
            "openssl",
            "smime",
            "-verify",
            "-inform",
            "DER",
            "-in",
            str(signed),
            "-CAfile",
            str(ca),
            "-purpose",
            "any",
        ],
        capture_output=True,
        check=True,
    )
    assert plistlib.loads(out.stdout)["PayloadContent"][4]["SSID_STR"] == "Corp-Secure"
