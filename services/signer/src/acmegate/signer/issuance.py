"""From a :class:`CertificateSpec` to a signed end-entity certificate.

:func:`build_certificate` is pure (no key, no I/O): it turns the policy stage's spec into a
complete builder, so every defect of the spec is found before anything is reserved or signed.
:func:`issue` hands that builder to the CA's :class:`~acmegate.signer.keys.CaKey`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.common.messages import CertificateSpec, NameAttribute, SanEntry
from acmegate.common.x509names import (
    PERMANENT_IDENTIFIER,
    UPN,
    encode_permanent_identifier,
    encode_utf8_string,
)
from acmegate.signer.authorities import Authority

KEY_USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
)
_MIN_RSA_BITS = 2048
_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)


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
    sans = [_general_name(entry) for entry in spec.sans]
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
        builder = builder.add_extension(_key_usage(spec.key_usage), critical=True)
    if spec.extended_key_usage:
        builder = builder.add_extension(
            _extended_key_usage(spec.extended_key_usage), critical=False
        )
    return CertificateDraft(builder, serial, not_before, not_after)


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
        try:
            names.append(x509.NameAttribute(oid, attribute.value))
        except ValueError as exc:  # e.g. a countryName that is not two letters
            raise AcmeError(
                ErrorKind.BAD_CSR, f"subject attribute {attribute.oid}={attribute.value!r}: {exc}"
            ) from exc
    return x509.Name(names)


def _general_name(entry: SanEntry) -> x509.GeneralName:
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
                # RFC 4043 PermanentIdentifier, the device-attest identity (apple-mda.md §1.1).
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


def _key_usage(names: list[str]) -> x509.KeyUsage:
    unknown = sorted(set(names) - set(KEY_USAGES))
    if unknown:
        raise _spec_error(f"unknown key usage {', '.join(unknown)}; one of {', '.join(KEY_USAGES)}")
    flags = {name: name in names for name in KEY_USAGES}
    return x509.KeyUsage(
        **flags, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False
    )


def _extended_key_usage(oids: list[str]) -> x509.ExtendedKeyUsage:
    try:
        return x509.ExtendedKeyUsage([x509.ObjectIdentifier(oid) for oid in oids])
    except ValueError as exc:
        raise _spec_error(f"extended key usage {oids!r} holds a malformed OID") from exc
