"""Checks on CA certificates and their chains, shared by start-up loading, ``ca list`` and the
CA setup commands (``ca init`` under an existing root, ``ca import``, ``ca install``).

:func:`validate_path` checks an issuing CA and its chain the way a relying party validates
the certificates it signs (RFC 5280 §6.1, as ``openssl verify`` does): names and signatures
link each certificate to the next, every certificate is a CA allowed to sign certificates,
the chain ends in a self-signed root, no CA's pathLenConstraint is exceeded, every
certificate is within its validity period, and the issuing CA may sign CRLs (cRLSign) and
OCSP responses (digitalSignature), as it does both itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

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


def check_validity(certificate: x509.Certificate, now: datetime) -> None:
    """``ChainError`` unless ``now`` is within the certificate's validity period."""
    if now < certificate.not_valid_before_utc:
        raise ChainError(
            f"{describe(certificate)} is not valid before "
            f"{certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
        )
    if now >= certificate.not_valid_after_utc:
        raise ChainError(
            f"{describe(certificate)} expired on {certificate.not_valid_after_utc:%Y-%m-%d}"
        )


def check_path_length(path: Sequence[x509.Certificate]) -> None:
    """``ChainError`` if a CA of ``path`` (issuing CA first, root last) has more CAs below it
    than its pathLenConstraint allows (RFC 5280 §4.2.1.9; self-issued ones do not count)."""
    below = 0
    for index, certificate in enumerate(path):
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        limit = constraints.value.path_length
        if limit is not None and below > limit:
            under = describe(path[index - 1])
            allowed = "no CA" if limit == 0 else f"at most {limit} CAs"
            raise ChainError(
                f"{describe(certificate)} allows {allowed} below it (pathlen:{limit}), but "
                f"{under} is one: relying parties would refuse its certificates "
                "(path length constraint exceeded)"
            )
        if certificate.subject != certificate.issuer:
            below += 1


def check_issuing_key_usage(certificate: x509.Certificate) -> None:
    """``ChainError`` unless the issuing CA may sign CRLs and OCSP responses (RFC 5280
    §4.2.1.3; RFC 6960 §4.2.2.2: a CA that answers OCSP itself signs with its key)."""
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return  # no keyUsage: every usage is allowed
    name = describe(certificate)
    if not usage.crl_sign:
        raise ChainError(f"{name} may not sign CRLs (keyUsage lacks cRLSign)")
    if not usage.digital_signature:
        raise ChainError(
            f"{name} may not sign its OCSP responses (keyUsage lacks digitalSignature (OCSP))"
        )


def check_issuing_ca(certificate: x509.Certificate, *, now: datetime) -> None:
    """``ChainError`` unless ``certificate`` can be an issuing CA now: a CA certificate, not a
    root, allowed to sign CRLs and OCSP responses, within its validity period."""
    check_ca_certificate(certificate)
    check_issuing_key_usage(certificate)
    if is_self_signed(certificate):
        raise ChainError(
            f"{describe(certificate)} is a self-signed root, not an issuing CA: "
            "acmegate signs with a CA below a root (`acmegate ca init` makes both)"
        )
    check_validity(certificate, now)


def check_issuer_chain(
    certificate: x509.Certificate, chain: Sequence[x509.Certificate], *, now: datetime
) -> None:
    """``ChainError`` unless ``chain`` (the issuing CA's issuers, up to the root) links
    ``certificate`` to a self-signed root that relying parties accept now."""
    check_chain(certificate, chain)
    if not chain:
        raise ChainError(
            f"no root certificate: give the chain up to the root that issued "
            f"{describe(certificate)}"
        )
    if not is_self_signed(chain[-1]):
        raise ChainError(
            f"the chain ends with {describe(chain[-1])}, which is not a self-signed root; "
            "list the issuers up to the root"
        )
    check_path_length([certificate, *chain])
    for each in chain:
        check_validity(each, now)


def validate_path(
    certificate: x509.Certificate, chain: Sequence[x509.Certificate], *, now: datetime
) -> None:
    """``ChainError`` unless relying parties would accept what the issuing CA ``certificate``
    signs now, with ``chain`` its issuers up to the root (module doc)."""
    check_issuing_ca(certificate, now=now)
    check_issuer_chain(certificate, chain, now=now)
