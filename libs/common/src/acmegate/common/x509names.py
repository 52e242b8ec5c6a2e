"""X.509 name helpers shared by the attestation stage, the signer and the test kit.

- otherName values: RFC 4043 PermanentIdentifier (1.3.6.1.5.5.7.8.3, the device-attest
  identity, draft-ietf-acme-device-attest §3.2) and Microsoft's UPN (1.3.6.1.4.1.311.20.2.3);
- public-key identity: DER SubjectPublicKeyInfo and its fingerprint, used to bind the CSR key
  to the attested key (docs/apple-attestation.md §8).
"""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from pyasn1.codec.der import decoder as der_decoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import char, namedtype, univ

PERMANENT_IDENTIFIER = x509.ObjectIdentifier("1.3.6.1.5.5.7.8.3")
UPN = x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")


class _PermanentIdentifier(univ.Sequence):  # type: ignore[misc]
    componentType = namedtype.NamedTypes(
        namedtype.OptionalNamedType("identifierValue", char.UTF8String()),
        namedtype.OptionalNamedType("assigner", univ.ObjectIdentifier()),
    )


def _der(tag: int, content: bytes) -> bytes:
    """One DER TLV (X.690 §8.1: definite length, short form below 128)."""
    length = len(content)
    if length < 0x80:
        return bytes((tag, length)) + content
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + content


def _der_oid(dotted: str) -> bytes:
    """DER OBJECT IDENTIFIER (X.690 §8.19)."""
    arcs = [int(arc) for arc in dotted.split(".")]
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] > 39):
        raise ValueError(f"not an object identifier: {dotted!r}")
    body = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(reversed(chunk))
    return _der(0x06, bytes(body))


def encode_permanent_identifier(value: str | None, assigner: str | None = None) -> bytes:
    """DER of a PermanentIdentifier, as carried in an otherName's value.

    Encoded directly (it is on the signer's per-certificate path; pyasn1 costs ~0.1 ms here).
    """
    content = b""
    if value is not None:
        content += encode_utf8_string(value)
    if assigner is not None:
        content += _der_oid(assigner)
    return _der(0x30, content)


def decode_permanent_identifier(der: bytes) -> tuple[str | None, str | None]:
    """(identifierValue, assigner) of a DER PermanentIdentifier; ``ValueError`` if malformed."""
    try:
        pid, rest = der_decoder.decode(der, asn1Spec=_PermanentIdentifier())
    except PyAsn1Error as exc:
        raise ValueError(f"malformed PermanentIdentifier: {exc}") from exc
    if rest:
        raise ValueError("trailing data after PermanentIdentifier")
    value = pid["identifierValue"]
    assigner = pid["assigner"]
    return (
        str(value) if value.isValue else None,
        str(assigner) if assigner.isValue else None,
    )


def encode_utf8_string(value: str) -> bytes:
    """DER UTF8String, the value of a UPN otherName."""
    return _der(0x0C, value.encode("utf-8"))


def decode_utf8_string(der: bytes) -> str:
    try:
        value, rest = der_decoder.decode(der, asn1Spec=char.UTF8String())
    except PyAsn1Error as exc:
        raise ValueError(f"malformed UTF8String: {exc}") from exc
    if rest:
        raise ValueError("trailing data after UTF8String")
    return str(value)


def spki_der(key: PublicKeyTypes) -> bytes:
    """DER SubjectPublicKeyInfo of ``key``."""
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def spki_fingerprint(spki: bytes) -> str:
    """``SHA256:<hex>`` of a DER SubjectPublicKeyInfo (for logs and records)."""
    return "SHA256:" + hashlib.sha256(spki).hexdigest()


def describe_general_name(name: x509.GeneralName) -> str:
    """``DNS: host``, ``email: …``, ``permanentIdentifier: SERIAL[/assigner]``, ``UPN: …`` …"""
    if isinstance(name, x509.DNSName):
        return f"DNS: {name.value}"
    if isinstance(name, x509.RFC822Name):
        return f"email: {name.value}"
    if isinstance(name, x509.UniformResourceIdentifier):
        return f"URI: {name.value}"
    if isinstance(name, x509.IPAddress):
        return f"IP: {name.value}"
    if isinstance(name, x509.OtherName):
        try:
            if name.type_id == PERMANENT_IDENTIFIER:
                value, assigner = decode_permanent_identifier(name.value)
                return f"permanentIdentifier: {value}" + (f"/{assigner}" if assigner else "")
            if name.type_id == UPN:
                return f"UPN: {decode_utf8_string(name.value)}"
        except ValueError:
            pass  # not the encoding the OID promises: shown raw below
        return f"otherName: {name.type_id.dotted_string}:{name.value.hex()}"
    return f"{type(name).__name__}: {name.value}"


def describe_subject_alt_names(certificate: x509.Certificate) -> list[str]:
    """One :func:`describe_general_name` line per SAN of ``certificate``."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return [describe_general_name(name) for name in san.value]
