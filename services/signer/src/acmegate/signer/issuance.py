"""From a :class:`CertificateSpec` to a signed end-entity certificate.

:func:`build_certificate` is pure (no key, no I/O): it turns the policy stage's spec into a
complete builder, so every defect of the spec is found before anything is reserved or signed.
:func:`issue` hands that builder to the CA's :class:`~acmegate.signer.ca_key.CaKey`.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.common.messages import CertificateSpec, NameAttribute, SanEntry
from acmegate.common.x509names import (
    PERMANENT_IDENTIFIER,
    UPN,
    encode_permanent_identifier,
    encode_utf8_string,
)
from acmegate.signer.authorities import Authority, PublicationUrls

KEY_USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
)
_MIN_RSA_BITS = 2048
_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)

# RFC 5280 Appendix A upper bounds (characters) of the attributes templates write, with the
# names used in messages. The policy stage checks them too; a value that still exceeds one
# here is refused with this message rather than encoded into a certificate that RFC 5280
# validators (and some RADIUS servers) reject.
_UPPER_BOUNDS: dict[x509.ObjectIdentifier, tuple[str, int, str]] = {
    NameOID.COMMON_NAME: ("CN", 64, "ub-common-name"),
    NameOID.SERIAL_NUMBER: ("serialNumber", 64, "ub-serial-number"),
    NameOID.LOCALITY_NAME: ("L", 128, "ub-locality-name"),
    NameOID.STATE_OR_PROVINCE_NAME: ("ST", 128, "ub-state-name"),
    NameOID.ORGANIZATION_NAME: ("O", 64, "ub-organization-name"),
    NameOID.ORGANIZATIONAL_UNIT_NAME: ("OU", 64, "ub-organizational-unit-name"),
    NameOID.TITLE: ("title", 64, "ub-title"),
    NameOID.EMAIL_ADDRESS: ("emailAddress", 255, "ub-emailaddress-length"),
}
_POSSIBLE_USAGES: dict[str, frozenset[str]] = {
    "RSA": frozenset(
        {"digital_signature", "content_commitment", "key_encipherment", "data_encipherment"}
    ),
    "EC": frozenset({"digital_signature", "content_commitment", "key_agreement"}),
    "EdDSA": frozenset({"digital_signature", "content_commitment"}),
}


def _key_family(public_key: CertificatePublicKeyTypes) -> str:
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RSA"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return "EC"
    return "EdDSA"


# SAN forms that are IA5String (RFC 5280 §4.2.1.6): ASCII only.
_IA5_SANS = {"dns": "dNSName", "rfc822": "rfc822Name", "uri": "URI"}


def _spec_error(detail: str) -> AcmeError:
    # The spec is the policy stage's output: a defect in it is ours, not the client's.
    return AcmeError(ErrorKind.SERVER_INTERNAL, f"cannot issue: {detail}")


@dataclass(frozen=True)
class CertificateDraft:
    """A complete, unsigned certificate and the facts about it that are stored with it."""

    builder: x509.CertificateBuilder
    serial: int
    not_before: datetime
    not_after: datetime


def build_certificate(
    authority: Authority, spec: CertificateSpec, *, now: datetime, serial: int
) -> CertificateDraft:
    """The complete, unsigned certificate ``authority`` issues for ``spec`` at ``now``.

    Raises :class:`AcmeError` for a spec that cannot be issued (before anything is signed).
    """
    public_key = _public_key(spec.public_key)
    subject = _subject(spec.subject)
    sans = [_general_name(entry) for entry in _unique_sans(spec.sans)]
    if not sans and not spec.subject:
        raise _spec_error(f"template {spec.template!r} yields neither a subject nor a SAN")
    not_before, not_after = _validity(authority, spec, now)

    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(authority.certificate.subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(authority.authority_key_identifier, critical=False)
    )
    if sans:
        # RFC 5280 §4.2.1.6: with an empty subject the identity is in the SAN alone, which
        # must then be critical.
        builder = builder.add_extension(
            x509.SubjectAlternativeName(sans), critical=not spec.subject
        )
    if spec.key_usage:
        builder = builder.add_extension(
            _key_usage(spec.key_usage, public_key, spec.template), critical=True
        )
    if spec.extended_key_usage:
        builder = builder.add_extension(
            _extended_key_usage(spec.extended_key_usage), critical=False
        )
    if authority.urls is not None:
        builder = _add_publication(builder, authority.urls)
    return CertificateDraft(builder, serial, not_before, not_after)


def _add_publication(
    builder: x509.CertificateBuilder, urls: PublicationUrls
) -> x509.CertificateBuilder:
    """CRL distribution point (RFC 5280 §4.2.1.13) and AIA (§4.2.2.1), both non-critical."""
    for extension in _publication_extensions(urls):
        builder = builder.add_extension(extension, critical=False)
    return builder


@functools.lru_cache(maxsize=64)
def _publication_extensions(urls: PublicationUrls) -> tuple[x509.ExtensionType, ...]:
    # The same for every certificate of a CA: built once.
    extensions: list[x509.ExtensionType] = []
    if urls.crl is not None:
        point = x509.DistributionPoint(
            full_name=[x509.UniformResourceIdentifier(urls.crl)],
            relative_name=None,
            reasons=None,
            crl_issuer=None,
        )
        extensions.append(x509.CRLDistributionPoints([point]))
    access = []
    if urls.ocsp is not None:
        access.append(
            x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(urls.ocsp)
            )
        )
    access.append(
        x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(urls.issuer)
        )
    )
    extensions.append(x509.AuthorityInformationAccess(access))
    return tuple(extensions)


def _unique_sans(entries: list[SanEntry]) -> list[SanEntry]:
    """The SAN entries without repeats, first occurrence kept (DNS names compare without
    case, RFC 4343); a template that yields one name twice gets it once."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for entry in entries:
        key = (entry.type, entry.value.lower() if entry.type == "dns" else entry.value)
        if key not in seen:
            seen.add(key)
            unique.append(entry)
    return unique


async def issue(
    authority: Authority, spec: CertificateSpec, *, now: datetime, serial: int
) -> x509.Certificate:
    """Build and sign the certificate for ``spec`` (see :func:`build_certificate`)."""
    draft = build_certificate(authority, spec, now=now, serial=serial)
    return await authority.key.sign_certificate(draft.builder, spec.signature_hash)


def _public_key(spki: bytes) -> CertificatePublicKeyTypes:
    try:
        key = serialization.load_der_public_key(spki)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise AcmeError(ErrorKind.BAD_PUBLIC_KEY, "the public key cannot be decoded") from exc
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < _MIN_RSA_BITS:
            raise AcmeError(
                ErrorKind.BAD_PUBLIC_KEY, f"RSA keys need at least {_MIN_RSA_BITS} bits"
            )
        return key
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, _CURVES):
            raise AcmeError(ErrorKind.BAD_PUBLIC_KEY, f"unsupported curve {key.curve.name}")
        return key
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return key
    raise AcmeError(ErrorKind.BAD_PUBLIC_KEY, f"unsupported key type {type(key).__name__}")


def _subject(attributes: list[NameAttribute]) -> x509.Name:
    names = []
    for attribute in attributes:
        try:
            oid = x509.ObjectIdentifier(attribute.oid)
        except ValueError as exc:
            raise _spec_error(f"subject attribute OID {attribute.oid!r} is malformed") from exc
        label, limit, bound = _UPPER_BOUNDS.get(oid, (attribute.oid, 0, ""))
        if not attribute.value:
            # The policy stage drops empty values or refuses them (`required`): one that
            # reaches the signer is a defect of the spec.
            raise _spec_error(f"subject attribute {label} is empty")
        if limit and len(attribute.value) > limit:
            raise AcmeError(
                ErrorKind.BAD_CSR,
                f"subject {label} is {len(attribute.value)} characters long; RFC 5280 allows "
                f"at most {limit} ({bound}): {attribute.value[:20]!r}…",
            )
        try:
            names.append(x509.NameAttribute(oid, attribute.value))
        except ValueError as exc:  # e.g. a countryName that is not two letters
            raise AcmeError(
                ErrorKind.BAD_CSR, f"subject attribute {attribute.oid}={attribute.value!r}: {exc}"
            ) from exc
    return x509.Name(names)


def _general_name(entry: SanEntry) -> x509.GeneralName:
    if not entry.value:
        raise _spec_error(f"SAN {entry.type} is empty")
    if entry.type in _IA5_SANS and not entry.value.isascii():
        hint = " (write internationalised names as A-labels, xn--…)" if entry.type == "dns" else ""
        raise AcmeError(
            ErrorKind.BAD_CSR,
            f"SAN {_IA5_SANS[entry.type]} {entry.value!r} holds non-ASCII characters; "
            f"RFC 5280 §4.2.1.6 allows ASCII only{hint}",
        )
    if entry.type == "uri":
        _check_uri(entry.value)
    try:
        match entry.type:
            case "dns":
                return x509.DNSName(entry.value)
            case "rfc822":
                return x509.RFC822Name(entry.value)
            case "uri":
                return x509.UniformResourceIdentifier(entry.value)
            case "ip":
                return x509.IPAddress(ipaddress.ip_address(entry.value))
            case "upn":
                return x509.OtherName(UPN, encode_utf8_string(entry.value))
            case "permanent_identifier":
                # RFC 4043 PermanentIdentifier, the device-attest identity
                # (draft-ietf-acme-device-attest §3.2, RFC 4043).
                return x509.OtherName(
                    PERMANENT_IDENTIFIER, encode_permanent_identifier(entry.value)
                )
    except ValueError as exc:
        # A value that does not fit its name form (non-ASCII dNSName, bad IP): it came from
        # the request or the inventory through the template.
        raise AcmeError(
            ErrorKind.BAD_CSR, f"SAN {entry.type} {entry.value!r} is not valid: {exc}"
        ) from exc
    raise _spec_error(f"unknown SAN type {entry.type!r}")


def _check_uri(value: str) -> None:
    """RFC 5280 §4.2.1.6: an absolute URI with a scheme and a scheme-specific part; one with
    an authority names a host."""
    parts = urlsplit(value)
    problem = None
    if not parts.scheme or not value[len(parts.scheme) + 1 :]:
        problem = "is not an absolute URI (scheme:rest)"
    elif value[len(parts.scheme) + 1 :].startswith("//") and not parts.hostname:
        problem = "has an authority without a host"
    elif any(c.isspace() for c in value):
        problem = "holds white space"
    if problem:
        raise AcmeError(ErrorKind.BAD_CSR, f"SAN URI {value!r} {problem}")


def _validity(
    authority: Authority, spec: CertificateSpec, now: datetime
) -> tuple[datetime, datetime]:
    if spec.validity_seconds <= 0 or spec.backdate_seconds < 0:
        raise _spec_error("validity must be positive and the backdate not negative")
    # X.509 times have whole seconds; truncating here keeps what is stored equal to the DER.
    now = now.replace(microsecond=0)
    # Backdating absorbs small clock skew on devices; never before the CA itself, nor after
    # it (RFC 5280 §6.1 checks every certificate of the path at the same time).
    not_before = max(now - timedelta(seconds=spec.backdate_seconds), authority.not_before)
    not_after = min(now + timedelta(seconds=spec.validity_seconds), authority.not_after)
    if not_after <= now:
        raise _spec_error(
            f"certificate authority {authority.name!r} expired on {authority.not_after:%Y-%m-%d}"
        )
    return not_before, not_after


def _key_usage(
    names: list[str], public_key: CertificatePublicKeyTypes, template: str
) -> x509.KeyUsage:
    unknown = sorted(set(names) - set(KEY_USAGES))
    if unknown:
        raise _spec_error(f"unknown key usage {', '.join(unknown)}; one of {', '.join(KEY_USAGES)}")
    # One template serves RSA and EC devices alike (a Wi-Fi template often asks for
    # keyEncipherment, which RSA key transport needs): a usage the subject key's algorithm
    # cannot perform is left out rather than certified (RFC 5480 §3 forbids keyEncipherment
    # and dataEncipherment for EC keys, RFC 8410 §5 also keyAgreement for Ed25519/Ed448,
    # RFC 3279 §2.3.1 does not list keyAgreement for RSA).
    possible = _POSSIBLE_USAGES[_key_family(public_key)]
    applicable = [name for name in names if name in possible]
    if not applicable:
        raise AcmeError(
            ErrorKind.BAD_CSR,
            f"template {template!r} asks for key usage {', '.join(names)}, which a "
            f"{_key_family(public_key)} key cannot have; use a key of another type",
        )
    names = applicable
    flags = {name: name in names for name in KEY_USAGES}
    return x509.KeyUsage(
        **flags, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False
    )


def _extended_key_usage(oids: list[str]) -> x509.ExtendedKeyUsage:
    try:
        return x509.ExtendedKeyUsage([x509.ObjectIdentifier(oid) for oid in oids])
    except ValueError as exc:
        raise _spec_error(f"extended key usage {oids!r} holds a malformed OID") from exc
