"""The attestation stage of finalize: the CSR is well-formed, self-signed and uses the attested key.

RFC 8555 §7.4 leaves CSR policy to the server. For an attested device the one thing that matters is
that the certificate goes to the Secure Enclave key Apple vouched for: the CSR's public key must be
the attestation leaf's key (docs/apple-attestation.md §8; step-ca compares key fingerprints,
ACME-Server-ADCS stores the leaf SPKI). The names the CSR carries must not claim another device: a
PermanentIdentifier otherName must be the order's identifier (draft-ietf-acme-device-attest §3.2:
"an octet-for-octet match"), and — with ``csr_common_name: identifier``, step-ca's rule — a common
name must be the identifier or an attested one.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping, Sequence

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import NameOID

from acmegate.attestation.errors import bad_csr
from acmegate.common.config.model import AttestationProviderConfig
from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.common.messages import CsrInfo, DeviceClaims, FinalizeOrder, PermanentIdentifierName
from acmegate.common.vocabulary import IdentifierType
from acmegate.common.x509names import (
    PERMANENT_IDENTIFIER,
    UPN,
    decode_permanent_identifier,
    decode_utf8_string,
    spki_der,
    spki_fingerprint,
)

_EC_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
_RSA_MIN_BITS = 2048
# Larger keys only make signature checks slow; no Apple device or sane client sends one.
_RSA_MAX_BITS = 8192
# A claim naming a provider that is no longer configured gets the strict defaults.
_DEFAULT_PROVIDER = AttestationProviderConfig(name="")


def check_csr(order: FinalizeOrder, providers: Mapping[str, AttestationProviderConfig]) -> CsrInfo:
    """The names and key of ``order``'s CSR, after checking it against the order's claims.

    ``providers`` maps provider names to their configuration (``csr_common_name``). Raises
    ``AcmeError`` (``badCSR``) with a detail that says what differs.
    """
    csr = _parse(order.csr_der)
    key = _public_key(csr)
    if not csr.is_signature_valid:
        raise bad_csr("CSR signature is not valid (it must be signed with the requested key)")
    public_key = spki_der(key)
    if is_server_order(order):
        info = _names(csr, public_key)
        _check_server_names(info, order)
        return info
    _check_attested_key(public_key, order.claims)
    info = _names(csr, public_key)
    _check_names(info, order, providers)
    return info


def is_server_order(order: FinalizeOrder) -> bool:
    """An order of ``dns``/``ip`` identifiers (identifiers.py never mixes them with devices)."""
    return bool(order.identifiers) and all(
        i.type in (IdentifierType.DNS, IdentifierType.IP) for i in order.identifiers
    )


def _check_server_names(info: CsrInfo, order: FinalizeOrder) -> None:
    """RFC 8555 §7.4: the CSR names exactly the order's identifiers (as SANs; a common name,
    if any, must be one of them). The key is the requester's own: nothing attests it."""
    if info.emails or info.uris or info.upns or info.permanent_identifiers:
        raise bad_csr("a server certificate CSR may name only DNS names and IP addresses")
    wanted = {(i.type, i.value) for i in order.identifiers}
    try:
        ips = {str(ipaddress.ip_address(a)) for a in info.ip_addresses}
    except ValueError as exc:
        raise bad_csr(f"CSR IP address is malformed: {exc}") from exc
    named = {(IdentifierType.DNS.value, d.lower()) for d in info.dns_names} | {
        (IdentifierType.IP.value, a) for a in ips
    }
    if named != wanted:
        raise bad_csr(
            "the CSR must name exactly the order's identifiers "
            f"({_listing(sorted(v for _, v in wanted))}); it names "
            f"{_listing(sorted(v for _, v in named))}"
        )
    if info.common_name is not None:
        values = {v for _, v in wanted}
        if info.common_name.lower() not in values:
            raise bad_csr(
                f"CSR common name {info.common_name!r} is not one of the order's identifiers"
            )


def _parse(der: bytes) -> x509.CertificateSigningRequest:
    try:
        return x509.load_der_x509_csr(der)
    except ValueError as exc:
        raise bad_csr("CSR is not a DER PKCS#10 certification request") from exc


def _public_key(csr: x509.CertificateSigningRequest) -> PublicKeyTypes:
    try:
        key = csr.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise bad_csr(f"CSR public key is unreadable or of an unsupported type: {exc}") from exc
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, _EC_CURVES):
            raise bad_csr(f"CSR key curve {key.curve.name} is not supported (P-256/384/521)")
    elif isinstance(key, rsa.RSAPublicKey):
        if not _RSA_MIN_BITS <= key.key_size <= _RSA_MAX_BITS:
            raise bad_csr(
                f"CSR RSA key has {key.key_size} bits; "
                f"{_RSA_MIN_BITS} to {_RSA_MAX_BITS} are supported"
            )
    elif not isinstance(key, ed25519.Ed25519PublicKey):
        raise bad_csr(f"CSR key type {type(key).__name__} is not supported (EC, RSA, Ed25519)")
    return key


def _check_attested_key(public_key: bytes, claims: Sequence[DeviceClaims]) -> None:
    if not claims:
        # An order reaches finalize only through validated authorizations; one without
        # attestation claims has nothing to bind the key to, so it may not get a certificate.
        raise AcmeError(ErrorKind.UNAUTHORIZED, "the order has no attested key to bind the CSR to")
    for claim in claims:
        if not hmac.compare_digest(public_key, claim.attested_key):
            raise bad_csr(
                f"CSR public key ({_short(public_key)}) is not the attested key "
                f"({_short(claim.attested_key)}); the CSR must use the key Apple attested"
            )


def _short(spki: bytes) -> str:
    return spki_fingerprint(spki)[:23] + "…"


def _names(csr: x509.CertificateSigningRequest, public_key: bytes) -> CsrInfo:
    subject: list[tuple[str, str]] = []
    for attribute in csr.subject:
        value = attribute.value
        subject.append(
            (attribute.oid.dotted_string, value if isinstance(value, str) else value.hex())
        )
    common_names = [value for oid, value in subject if oid == NameOID.COMMON_NAME.dotted_string]
    if len(common_names) > 1:
        raise bad_csr("CSR subject has more than one common name")
    dns: list[str] = []
    emails: list[str] = []
    uris: list[str] = []
    ips: list[str] = []
    upns: list[str] = []
    permanent: list[PermanentIdentifierName] = []
    for name in _alt_names(csr):
        if isinstance(name, x509.DNSName):
            dns.append(name.value)
        elif isinstance(name, x509.RFC822Name):
            emails.append(name.value)
        elif isinstance(name, x509.UniformResourceIdentifier):
            uris.append(name.value)
        elif isinstance(name, x509.IPAddress):
            ips.append(str(name.value))
        elif isinstance(name, x509.OtherName) and name.type_id == UPN:
            try:
                upns.append(decode_utf8_string(name.value))
            except ValueError as exc:
                raise bad_csr(f"CSR UPN otherName is malformed: {exc}") from exc
        elif isinstance(name, x509.OtherName) and name.type_id == PERMANENT_IDENTIFIER:
            try:
                pid_value, assigner = decode_permanent_identifier(name.value)
            except ValueError as exc:
                raise bad_csr(f"CSR PermanentIdentifier otherName is malformed: {exc}") from exc
            permanent.append(PermanentIdentifierName(value=pid_value, assigner=assigner))
    return CsrInfo(
        public_key=public_key,
        subject=subject,
        common_name=common_names[0] if common_names else None,
        dns_names=dns,
        emails=emails,
        uris=uris,
        upns=upns,
        permanent_identifiers=permanent,
        ip_addresses=ips,
    )


def _alt_names(csr: x509.CertificateSigningRequest) -> list[x509.GeneralName]:
    try:
        extension = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
        raise bad_csr(f"CSR extensions are malformed: {exc}") from exc
    return list(extension.value)


def _check_names(
    info: CsrInfo, order: FinalizeOrder, providers: Mapping[str, AttestationProviderConfig]
) -> None:
    identifiers = [i.value for i in order.identifiers]
    attested = [
        value for claim in order.claims for value in (claim.serial_number, claim.udid) if value
    ]
    # With an enrollment token as the order identifier, the device's names are the attested
    # ones; otherwise the order identifier is the name (draft-ietf-acme-device-attest §3.2).
    allowed_permanent = attested if order.platform is not None else identifiers
    for pid in info.permanent_identifiers:
        if pid.value is None:
            raise bad_csr("CSR PermanentIdentifier has no identifierValue (draft §3.2)")
        text = pid.value if pid.assigner is None else f"{pid.value}/{pid.assigner}"
        if text not in allowed_permanent:
            expected = "the attested serial number or UDID" if order.platform else "the order"
            raise bad_csr(
                f"CSR PermanentIdentifier {text!r} does not match {expected} "
                f"({_listing(allowed_permanent)})"
            )
    strict = any(
        providers.get(claim.provider, _DEFAULT_PROVIDER).csr_common_name == "identifier"
        for claim in order.claims
    )
    if strict and info.common_name is not None:
        if info.common_name not in identifiers + attested:
            # An enrollment token is a credential: never echo it into a detail or a log.
            shown = attested if order.platform is not None else identifiers + attested
            raise bad_csr(
                f"CSR common name {info.common_name!r} is neither the order identifier nor an "
                f"attested serial number or UDID ({_listing(shown)})"
            )


def _listing(values: Sequence[str]) -> str:
    return ", ".join(repr(value) for value in dict.fromkeys(values)) or "none"
