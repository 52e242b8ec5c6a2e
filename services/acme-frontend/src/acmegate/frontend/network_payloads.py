"""The payloads of a platform's profile that put the ACME identity to use: trust anchors,
Wi-Fi and wired 802.1X with EAP-TLS, and an IKEv2 VPN (docs/profiles.md).

Keys, types and allowed values follow Apple's published profile schemas (the
apple/device-management repository, ``mdm/profiles/``): ``com.apple.security.root`` and
``com.apple.security.pkcs1`` (``PayloadContent``: the DER certificate),
``com.apple.wifi.managed`` (``SSID_STR``, ``HIDDEN_NETWORK``, ``AutoJoin``, ``EncryptionType``,
``PayloadCertificateUUID``, ``EAPClientConfiguration`` with ``AcceptEAPTypes`` [13] for
EAP-TLS, ``TLSTrustedServerNames``, ``PayloadCertificateAnchorUUID``, ``TLSMinimumVersion``),
``com.apple.firstactiveethernet.managed`` (``Interface`` ``FirstActiveEthernet`` with the same
EAP settings) and ``com.apple.vpn.managed`` (``VPNType`` ``IKEv2`` and its ``IKEv2`` dictionary
with ``AuthenticationMethod`` ``Certificate``). Every reference is a ``PayloadUUID`` inside the
same profile.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from acmegate.common.config.model import (
    EapTlsSettings,
    ProfileKeySize,
    VpnSettings,
    WifiSettings,
)
from acmegate.common.errors import AcmeError, ErrorKind

# EAP type numbers (IANA "Extensible Authentication Protocol (EAP) Registry"): 13 is EAP-TLS.
EAP_TLS = 13
# Apple's IKEv2 CertificateType for the Secure Enclave key sizes the ACME payload asks for.
_IKEV2_CERTIFICATE_TYPE = {256: "ECDSA256", 384: "ECDSA384"}

Uuid = Callable[[str], str]


def load_anchors(paths: list[str]) -> list[x509.Certificate]:
    """Every certificate of the PEM files ``paths``, in order (a clear error if one is not)."""
    found: list[x509.Certificate] = []
    for path in paths:
        try:
            found.extend(x509.load_pem_x509_certificates(Path(path).read_bytes()))
        except (OSError, ValueError) as exc:
            raise AcmeError(
                ErrorKind.SERVER_INTERNAL, f"profile trust file {path!r} is unusable: {exc}"
            ) from exc
    return found


def _self_signed(certificate: x509.Certificate) -> bool:
    if certificate.issuer != certificate.subject:
        return False
    try:
        certificate.verify_directly_issued_by(certificate)
    except (ValueError, TypeError, x509.verification.VerificationError):
        return False
    return True


def trust_payloads(
    anchors: list[x509.Certificate], *, prefix: str, uuid: Uuid
) -> list[dict[str, Any]]:
    """A root (``com.apple.security.root``) or intermediate (``com.apple.security.pkcs1``)
    certificate payload per anchor."""
    payloads = []
    for index, certificate in enumerate(anchors):
        root = _self_signed(certificate)
        name = certificate.subject.rfc4514_string() or f"certificate {index + 1}"
        payloads.append(
            {
                "PayloadType": "com.apple.security.root" if root else "com.apple.security.pkcs1",
                "PayloadVersion": 1,
                "PayloadIdentifier": f"{prefix}.trust.{index}",
                "PayloadUUID": uuid(f"trust:{certificate.fingerprint(hashes.SHA256()).hex()}"),
                "PayloadDisplayName": name,
                "PayloadCertificateFileName": f"trust-{index + 1}.cer",
                "PayloadContent": certificate.public_bytes(serialization.Encoding.DER),
            }
        )
    return payloads


def _eap_tls(settings: EapTlsSettings, anchor_uuids: list[str]) -> dict[str, Any]:
    eap: dict[str, Any] = {
        "AcceptEAPTypes": [EAP_TLS],
        "TLSMinimumVersion": settings.tls_minimum_version,
    }
    if settings.trusted_server_names:
        eap["TLSTrustedServerNames"] = list(settings.trusted_server_names)
    if anchor_uuids:
        eap["PayloadCertificateAnchorUUID"] = list(anchor_uuids)
    return eap


def _header(
    payload_type: str, part: str, display: str, *, prefix: str, uuid: Uuid
) -> dict[str, Any]:
    """The keys every payload carries (Apple's CommonPayloadKeys)."""
    return {
        "PayloadType": payload_type,
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{prefix}.{part}",
        "PayloadUUID": uuid(part),
        "PayloadDisplayName": display,
    }


def wifi_payload(
    settings: WifiSettings,
    *,
    identity_uuid: str,
    anchor_uuids: list[str],
    prefix: str,
    uuid: Uuid,
) -> dict[str, Any]:
    header = _header(
        "com.apple.wifi.managed", "wifi", f"Wi-Fi ({settings.ssid})", prefix=prefix, uuid=uuid
    )
    return {
        **header,
        "SSID_STR": settings.ssid,
        "HIDDEN_NETWORK": settings.hidden,
        "AutoJoin": settings.auto_join,
        "EncryptionType": settings.encryption,
        "PayloadCertificateUUID": identity_uuid,
        "EAPClientConfiguration": _eap_tls(settings, anchor_uuids),
    }


def ethernet_payload(
    settings: EapTlsSettings,
    *,
    identity_uuid: str,
    anchor_uuids: list[str],
    prefix: str,
    uuid: Uuid,
) -> dict[str, Any]:
    # macOS only; "active" applies to the Ethernet interface working at installation.
    header = _header(
        "com.apple.firstactiveethernet.managed",
        "ethernet",
        "Wired 802.1X (first active Ethernet)",
        prefix=prefix,
        uuid=uuid,
    )
    return {
        **header,
        "Interface": "FirstActiveEthernet",
        "PayloadCertificateUUID": identity_uuid,
        "EAPClientConfiguration": _eap_tls(settings, anchor_uuids),
    }


def vpn_payload(
    settings: VpnSettings,
    *,
    identity_uuid: str,
    key_size: ProfileKeySize,
    prefix: str,
    uuid: Uuid,
) -> dict[str, Any]:
    header = _header(
        "com.apple.vpn.managed", "vpn", f"VPN ({settings.name})", prefix=prefix, uuid=uuid
    )
    return {
        **header,
        "UserDefinedName": settings.name,
        "VPNType": "IKEv2",
        "IKEv2": {
            "RemoteAddress": settings.server,
            "RemoteIdentifier": settings.remote_identifier,
            "LocalIdentifier": settings.local_identifier,
            "AuthenticationMethod": "Certificate",
            "CertificateType": _IKEV2_CERTIFICATE_TYPE[key_size],
            "PayloadCertificateUUID": identity_uuid,
            "ExtendedAuthEnabled": 0,
        },
    }
