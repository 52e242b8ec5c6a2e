"""The ``.mobileconfig`` of a device management platform: one ``com.apple.security.acme`` payload
(Apple's ACMECertificate, docs/apple-attestation.md §11) in a configuration profile, with the
trust, Wi-Fi, wired 802.1X and VPN payloads that use its identity (network_payloads.py),
optionally signed (CMS SignedData, RFC 5652) with a profile-signing certificate.

Payload keys follow apple/device-management ``mdm/profiles/com.apple.security.acme.yaml``:
DirectoryURL, ClientIdentifier, KeySize, KeyType ECSECPrimeRandom, HardwareBound true, Attest
true, Subject as an array of RDNs each an array of [type, value] pairs, and optional
SubjectAltName, UsageFlags, ExtendedKeyUsage.
"""

from __future__ import annotations

import plistlib
import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from acmegate.common.config.model import DeviceManagementPlatformConfig
from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.frontend.network_payloads import (
    ethernet_payload,
    load_anchors,
    trust_payloads,
    vpn_payload,
    wifi_payload,
)

ACME_PAYLOAD_TYPE = "com.apple.security.acme"
_RDN_SPLIT = re.compile(r"(?<!\\),")
_SAN_KEYS = ("rfc822Name", "dNSName", "uniformResourceIdentifier", "ntPrincipalName")
_EKU_NAMES = {
    "client_auth": "1.3.6.1.5.5.7.3.2",
    "server_auth": "1.3.6.1.5.5.7.3.1",
    "email_protection": "1.3.6.1.5.5.7.3.4",
}


@dataclass(frozen=True)
class Profile:
    """A generated profile and the values an administrator types into Jamf's own form."""

    data: bytes  # the .mobileconfig (XML plist, or its CMS signature when signed)
    signed: bool
    payload: dict[str, Any]
    jamf_form: list[tuple[str, str]]


def subject_array(subject: str) -> list[list[list[str]]]:
    """``CN=$SERIALNUMBER,O=Example`` → ``[[["CN","$SERIALNUMBER"]],[["O","Example"]]]``."""
    rdns: list[list[list[str]]] = []
    for part in _RDN_SPLIT.split(subject):
        name, sep, value = part.strip().partition("=")
        if not sep or not name.strip():
            raise AcmeError(
                ErrorKind.MALFORMED, f"profile subject {subject!r}: {part!r} is not NAME=VALUE"
            )
        rdns.append([[name.strip(), value.strip().replace("\\,", ",")]])
    return rdns


def jamf_subject(rdns: list[list[list[str]]]) -> str:
    """Jamf's form wants the subject as ``/CN=value/O=…`` (the product guide)."""
    return "".join(f"/{name}={value}" for rdn in rdns for name, value in rdn)


def _stable_uuid(*parts: str) -> str:
    # Stable across downloads, so a re-uploaded profile replaces the old one in the MDM.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "acmegate:" + ":".join(parts))).upper()


def _identifier_prefix(directory_url: str) -> str:
    host = urlsplit(directory_url).hostname or "localhost"
    return ".".join(reversed(host.split("."))) + ".acmegate"


def build_profile(
    platform: DeviceManagementPlatformConfig,
    *,
    directory_url: str,
    token: str | None,
    signer: tuple[x509.Certificate, Any, list[x509.Certificate]] | None = None,
) -> Profile:
    """The platform's profile; ``token`` is its live enrollment token (when it uses one)."""
    settings = platform.profile
    if settings.client_identifier == "token":
        if token is None:
            raise AcmeError(ErrorKind.SERVER_INTERNAL, "the platform has no enrollment token")
        client_identifier = token
    else:
        client_identifier = settings.client_identifier
    rdns = subject_array(settings.subject)
    prefix = _identifier_prefix(directory_url)
    payload: dict[str, Any] = {
        "PayloadType": ACME_PAYLOAD_TYPE,
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{prefix}.{platform.name}.acme",
        "PayloadUUID": _stable_uuid(directory_url, platform.name, "acme"),
        "PayloadDisplayName": f"ACME certificate ({platform.name})",
        "DirectoryURL": directory_url,
        "ClientIdentifier": client_identifier,
        "KeySize": settings.key_size,
        "KeyType": "ECSECPrimeRandom",
        # A Secure Enclave key (P-256/P-384 only) that Apple attests: device-attest-01.
        "HardwareBound": True,
        "Attest": True,
        "Subject": rdns,
    }
    if settings.subject_alt_name:
        unknown = set(settings.subject_alt_name) - set(_SAN_KEYS)
        if unknown:
            raise AcmeError(
                ErrorKind.MALFORMED,
                f"profile SubjectAltName keys {sorted(unknown)} are not Apple's {list(_SAN_KEYS)}",
            )
        payload["SubjectAltName"] = dict(settings.subject_alt_name)
    if settings.usage_flags is not None:
        payload["UsageFlags"] = settings.usage_flags
    if settings.extended_key_usage:
        payload["ExtendedKeyUsage"] = [_EKU_NAMES.get(e, e) for e in settings.extended_key_usage]
    acme_uuid = payload["PayloadUUID"]

    def uuid_of(part: str) -> str:
        return _stable_uuid(directory_url, platform.name, part)

    base = f"{prefix}.{platform.name}"
    anchors = trust_payloads(load_anchors(settings.trust), prefix=base, uuid=uuid_of)
    anchor_uuids = [anchor["PayloadUUID"] for anchor in anchors]
    network: list[dict[str, Any]] = []
    jamf_network: list[tuple[str, str]] = []
    if settings.wifi is not None:
        wifi = settings.wifi
        network.append(
            wifi_payload(
                wifi, identity_uuid=acme_uuid, anchor_uuids=anchor_uuids, prefix=base, uuid=uuid_of
            )
        )
        jamf_network += [
            ("Wi-Fi: SSID", wifi.ssid),
            ("Wi-Fi: Security Type", f"{wifi.encryption} Enterprise"),
            ("Wi-Fi: Protocols", "TLS"),
            ("Wi-Fi: Identity Certificate", "the ACME Certificate payload above"),
            ("Wi-Fi: Trusted Server Names", ", ".join(wifi.trusted_server_names) or "(none)"),
            ("Wi-Fi: Minimum TLS version", wifi.tls_minimum_version),
        ]
    if settings.ethernet is not None:
        network.append(
            ethernet_payload(
                settings.ethernet,
                identity_uuid=acme_uuid,
                anchor_uuids=anchor_uuids,
                prefix=base,
                uuid=uuid_of,
            )
        )
        jamf_network += [
            ("802.1X: Interface", "First Active Ethernet"),
            ("802.1X: Protocols", "TLS"),
            (
                "802.1X: Trusted Server Names",
                ", ".join(settings.ethernet.trusted_server_names) or "(none)",
            ),
        ]
    if settings.vpn is not None:
        vpn = settings.vpn
        network.append(
            vpn_payload(
                vpn,
                identity_uuid=acme_uuid,
                key_size=settings.key_size,
                prefix=base,
                uuid=uuid_of,
            )
        )
        jamf_network += [
            ("VPN: Connection Type", "IKEv2"),
            ("VPN: Server", vpn.server),
            ("VPN: Remote Identifier", vpn.remote_identifier),
            ("VPN: Local Identifier", vpn.local_identifier),
            ("VPN: Authentication", "Certificate (the ACME Certificate payload above)"),
        ]
    jamf_network += [("Certificate payload", anchor["PayloadDisplayName"]) for anchor in anchors]
    profile = {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{prefix}.{platform.name}",
        "PayloadUUID": _stable_uuid(directory_url, platform.name),
        "PayloadDisplayName": platform.description or f"acmegate: {platform.name}",
        "PayloadDescription": "Enrolls this device for a certificate over ACME "
        "(device-attest-01, Apple Managed Device Attestation).",
        "PayloadScope": "System",
        "PayloadContent": [payload, *anchors, *network],
    }
    data = plistlib.dumps(profile, fmt=plistlib.FMT_XML, sort_keys=False)
    if signer is not None:
        certificate, key, chain = signer
        builder = (
            pkcs7.PKCS7SignatureBuilder()
            .set_data(data)
            .add_signer(certificate, key, hashes.SHA256())
        )
        for extra in chain:
            builder = builder.add_certificate(extra)
        data = builder.sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    jamf_form = [
        ("ACME directory URL", directory_url),
        ("Client Identifier", client_identifier),
        ("Key Size", str(settings.key_size)),
        ("Key Type", "ECSECPrimeRandom"),
        ("Hardware Bound", "True"),
        ("Attest", "True"),
        ("Subject", jamf_subject(rdns)),
        *jamf_network,
    ]
    return Profile(data, signer is not None, payload, jamf_form)


def load_profile_signer(
    certificate_path: str, key_pem: str
) -> tuple[x509.Certificate, Any, list[x509.Certificate]]:
    """The profile-signing certificate (first in the file), its key, and any chain after it."""
    with open(certificate_path, "rb") as handle:
        certificates = x509.load_pem_x509_certificates(handle.read())
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    return certificates[0], key, certificates[1:]
