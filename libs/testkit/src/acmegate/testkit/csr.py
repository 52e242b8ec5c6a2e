"""The CSR an Apple device sends at finalize, built from its ACME payload's fields.

Apple: "The device submits a certificate signing request matching the key and containing the
ClientIdentifier, Subject, SubjectAltName, UsageFlags, and ExtendedKeyUsage fields" (Apple's
ACMECertificate documentation). How exactly a real device encodes them has not been seen in a
published capture (docs/apple-attestation.md §11), so this follows what practical servers expect:
subject CN = ClientIdentifier unless the profile's ``Subject`` says otherwise, SANs only when the
profile asks for them, and KU/EKU as an extensionRequest only when
``UsageFlags``/``ExtendedKeyUsage`` are set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from acmegate.common.x509names import (
    PERMANENT_IDENTIFIER,
    UPN,
    encode_permanent_identifier,
    encode_utf8_string,
)

# The short attribute names the Apple payload's `Subject` accepts (docs/apple-attestation.md §11).
_SUBJECT_SHORTCUTS: dict[str, x509.ObjectIdentifier] = {
    "C": NameOID.COUNTRY_NAME,
    "L": NameOID.LOCALITY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "CN": NameOID.COMMON_NAME,
}

SubjectSpec = x509.Name | Sequence[tuple[str, str]]
"""A subject: an ``x509.Name`` or (attribute, value) pairs, attribute a shortcut or an OID."""


@dataclass(frozen=True)
class SubjectAltNames:
    """The SANs a device puts in its CSR (Apple payload ``SubjectAltName``, plus the
    PermanentIdentifier otherName of draft-ietf-acme-device-attest §3.2)."""

    dns_names: Sequence[str] = ()
    emails: Sequence[str] = ()
    uris: Sequence[str] = ()
    upns: Sequence[str] = ()
    permanent_identifiers: Sequence[str] = ()

    @classmethod
    def from_profile(cls, profile: Mapping[str, str | Sequence[str]]) -> SubjectAltNames:
        """From an Apple payload ``SubjectAltName`` dict (``rfc822Name``, ``dNSName``,
        ``uniformResourceIdentifier``, ``ntPrincipalName``) plus an optional
        ``permanentIdentifier`` key."""
        keys = {
            "dNSName": "dns_names",
            "rfc822Name": "emails",
            "uniformResourceIdentifier": "uris",
            "ntPrincipalName": "upns",
            "permanentIdentifier": "permanent_identifiers",
        }
        unknown = set(profile) - set(keys)
        if unknown:
            raise ValueError(f"unknown SubjectAltName keys: {sorted(unknown)}")
        values: dict[str, tuple[str, ...]] = {}
        for key, value in profile.items():
            values[keys[key]] = (value,) if isinstance(value, str) else tuple(value)
        return cls(**values)

    def general_names(self) -> list[x509.GeneralName]:
        """The names as ``cryptography`` GeneralNames, in a stable order."""
        names: list[x509.GeneralName] = []
        names += [x509.DNSName(name) for name in self.dns_names]
        names += [x509.RFC822Name(email) for email in self.emails]
        names += [x509.UniformResourceIdentifier(uri) for uri in self.uris]
        names += [x509.OtherName(UPN, encode_utf8_string(upn)) for upn in self.upns]
        names += [
            x509.OtherName(PERMANENT_IDENTIFIER, encode_permanent_identifier(value))
            for value in self.permanent_identifiers
        ]
        return names


def subject_name(spec: SubjectSpec) -> x509.Name:
    """An ``x509.Name`` from a :data:`SubjectSpec`."""
    if isinstance(spec, x509.Name):
        return spec
    attributes = []
    for attribute, value in spec:
        oid = _SUBJECT_SHORTCUTS.get(attribute) or x509.ObjectIdentifier(attribute)
        attributes.append(x509.NameAttribute(oid, value))
    return x509.Name(attributes)


def subject_from_profile(subject: Sequence[Sequence[Sequence[str]]]) -> x509.Name:
    """An ``x509.Name`` from the Apple payload's array-of-RDNs form, e.g.
    ``[[["C","US"]],[["O","Apple Inc."]],[["CN","foo"]]]`` (docs/apple-attestation.md §11)."""
    rdns = []
    for rdn in subject:
        rdns.append(
            x509.RelativeDistinguishedName(
                x509.NameAttribute(_SUBJECT_SHORTCUTS.get(a) or x509.ObjectIdentifier(a), v)
                for a, v in rdn
            )
        )
    return x509.Name(rdns)


def _key_usage(flags: int) -> x509.KeyUsage:
    # Apple `UsageFlags`: 0x01 digital signature, 0x04 encryption (docs/apple-attestation.md §11);
    # which KU bit a device sets for "encryption" with an EC key is [UNCONFIRMED]: keyEncipherment
    # here.
    return x509.KeyUsage(
        digital_signature=bool(flags & 0x01),
        content_commitment=False,
        key_encipherment=bool(flags & 0x04),
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def build_csr(
    key: ec.EllipticCurvePrivateKey,
    subject: x509.Name,
    *,
    sans: SubjectAltNames | None = None,
    usage_flags: int | None = None,
    extended_key_usage: Sequence[str] = (),
) -> x509.CertificateSigningRequest:
    """A CSR for ``key``, self-signed by it (SHA-384 for P-384/P-521, else SHA-256;
    the hash a real device uses is not known, docs/apple-attestation.md §11)."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    general_names = sans.general_names() if sans else []
    if general_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(general_names), critical=False)
    if usage_flags:
        builder = builder.add_extension(_key_usage(usage_flags), critical=True)
    if extended_key_usage:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.ObjectIdentifier(oid) for oid in extended_key_usage]),
            critical=False,
        )
    digest = hashes.SHA384() if key.curve.key_size >= 384 else hashes.SHA256()
    return builder.sign(key, digest)
