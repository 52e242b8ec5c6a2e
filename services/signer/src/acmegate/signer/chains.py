"""Checks on CA certificates and their chains, shared by start-up loading and ``ca import``."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from acmegate.common.x509names import spki_der


class ChainError(Exception):
    """A CA certificate or chain is unusable; the message says which certificate and why."""


def describe(certificate: x509.Certificate) -> str:
    """A certificate's subject for messages."""
    return certificate.subject.rfc4514_string() or "(empty subject)"


def load_pem_certificates(data: bytes, *, what: str) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle, in file order; ``ChainError`` if there is none."""
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise ChainError(f"{what}: no PEM certificate could be read ({exc})") from exc
    return certificates


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def same_public_key(a: PublicKeyTypes, b: PublicKeyTypes) -> bool:
    """Whether two public keys are the same key (their DER SubjectPublicKeyInfo compare equal)."""
    return spki_der(a) == spki_der(b)


def is_self_signed(certificate: x509.Certificate) -> bool:
    """Subject equals issuer and the certificate's own key verifies its signature (a root)."""
    if certificate.subject != certificate.issuer:
        return False
    try:
        certificate.verify_directly_issued_by(certificate)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def check_ca_certificate(certificate: x509.Certificate) -> None:
    """``ChainError`` unless ``certificate`` may issue certificates (RFC 5280 §4.2.1.3, .9)."""
    name = describe(certificate)
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        raise ChainError(f"{name} is not a CA certificate (no basicConstraints)") from None
    if not constraints.ca:
        raise ChainError(f"{name} is not a CA certificate (basicConstraints CA:FALSE)")
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not usage.key_cert_sign:
        raise ChainError(f"{name} may not sign certificates (keyUsage lacks keyCertSign)")
    if not isinstance(certificate.public_key(), rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise ChainError(f"{name} has a {type(certificate.public_key()).__name__}; RSA or EC only")


def check_chain(certificate: x509.Certificate, chain: Sequence[x509.Certificate]) -> None:
    """``ChainError`` unless each chain certificate issued the one before it, in order.

    ``chain`` runs from the CA's issuer up (to the root, if given). Names and signatures are
    both checked, so a chain with a look-alike issuer name (another key) is refused.
    """
    child = certificate
    for index, parent in enumerate(chain):
        where = f"chain certificate {index + 1} ({describe(parent)})"
        if child.issuer != parent.subject:
            raise ChainError(
                f"{where} did not issue {describe(child)}, whose issuer is "
                f"{child.issuer.rfc4514_string()}; list the chain from the CA's issuer up"
            )
        check_ca_certificate(parent)
        try:
            child.verify_directly_issued_by(parent)
        except (InvalidSignature, ValueError, TypeError) as exc:
            raise ChainError(
                f"the signature of {describe(child)} does not verify with the key of {where}"
            ) from exc
        child = parent


def authority_key_identifier(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    """AKI for what ``issuer`` signs: its SKI, else one derived from its key (RFC 5280 §4.2.1.1)."""
    try:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        ski = None
    if ski is not None:
        return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    key = issuer.public_key()
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise ChainError(f"{describe(issuer)} has a {type(key).__name__}; RSA or EC only")
    return x509.AuthorityKeyIdentifier.from_issuer_public_key(key)


def issuer_chain(
    certificate: x509.Certificate, chain: Sequence[x509.Certificate]
) -> list[x509.Certificate]:
    """What follows a leaf in an RFC 8555 §7.4.2 chain: the CA, then its non-root issuers.

    A self-signed root is left out: the relying party must already trust it, so sending it
    only costs bytes (and some clients then build a different path).
    """
    return [certificate, *(c for c in chain if not is_self_signed(c))]
