"""Apple's device-property OIDs in Managed Device Attestation leaves.

What each one holds and how it is encoded: docs/apple-attestation.md §5, §6.

Shared by the attestation service, which reads them, and the test kit, which writes them the
way Apple does.
"""

from __future__ import annotations

from cryptography import x509

_APPLE = "1.2.840.113635.100.8."
OID_SERIAL_NUMBER = x509.ObjectIdentifier(_APPLE + "9.1")
OID_UDID = x509.ObjectIdentifier(_APPLE + "9.2")
OID_SOFTWARE_UPDATE_DEVICE_ID = x509.ObjectIdentifier(_APPLE + "9.4")
OID_OS_VERSION = x509.ObjectIdentifier(_APPLE + "10.1")
OID_SEPOS_VERSION = x509.ObjectIdentifier(_APPLE + "10.2")
OID_LLB_VERSION = x509.ObjectIdentifier(_APPLE + "10.3")
# The freshness code: SHA-256 of the challenge token, raw 32 bytes (docs/apple-attestation.md §7).
OID_FRESHNESS = x509.ObjectIdentifier(_APPLE + "11.1")
OID_SIP_STATUS = x509.ObjectIdentifier(_APPLE + "13.1")
OID_SECURE_BOOT = x509.ObjectIdentifier(_APPLE + "13.2")
OID_THIRD_PARTY_KEXTS = x509.ObjectIdentifier(_APPLE + "13.3")

NAMES = {
    OID_SERIAL_NUMBER: "serial number",
    OID_UDID: "UDID",
    OID_SOFTWARE_UPDATE_DEVICE_ID: "software update device ID",
    OID_OS_VERSION: "OS version",
    OID_SEPOS_VERSION: "sepOS version",
    OID_LLB_VERSION: "LLB version",
    OID_FRESHNESS: "freshness code",
    OID_SIP_STATUS: "SIP status",
    OID_SECURE_BOOT: "secure boot status",
    OID_THIRD_PARTY_KEXTS: "third-party kexts status",
}
