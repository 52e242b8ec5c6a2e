"""What a CA key is, wherever it lives: the :class:`CaKey` protocol, its error and algorithms.

Issuance never touches a private key object: it hands a finished builder to
:meth:`CaKey.sign_certificate` and gets a certificate back. So a key that never enters the
process (a PKCS#11 token: SoftHSM2 or an HSM, as Boulder does through its ``pkcs11key``
package) plugs in as one more :class:`CaKey` without changes to issuance. The storages are
:mod:`acmegate.signer.file_key` and :mod:`acmegate.signer.pkcs11_key`;
:func:`acmegate.signer.keys.open_ca_key` picks one for a configuration entry.

Signing is ``async`` because a token call blocks, and so does an RSA-3072/4096 signature
(~2-5 ms): each storage decides what runs in a worker thread.
"""

from __future__ import annotations

from typing import Literal, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp

CaPrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
CaPublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
HashName = Literal["sha256", "sha384", "sha512"]

SignatureHash = hashes.SHA256 | hashes.SHA384 | hashes.SHA512
_HASHES: dict[str, type[SignatureHash]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


class CaKeyError(Exception):
    """A CA key cannot be used; the message names the CA and where its secret comes from."""


def hash_algorithm(name: str) -> SignatureHash:
    """The hash object for ``sha256`` / ``sha384`` / ``sha512``; ``ValueError`` otherwise."""
    try:
        return _HASHES[name]()
    except KeyError:
        raise ValueError(f"unsupported signature hash {name!r}") from None


class CaKey(Protocol):
    """A CA private key that signs where it lives; the private part is never handed out."""

    @property
    def description(self) -> str:
        """Where the key lives, for messages (``file /etc/acmegate/issuing.key``)."""

    def public_key(self) -> CaPublicKey:
        """The public half, to check it against the CA certificate."""

    async def sign_certificate(
        self, builder: x509.CertificateBuilder, hash_name: HashName
    ) -> x509.Certificate:
        """Sign a complete certificate builder (subject, issuer, serial, validity, extensions)."""

    async def sign_crl(
        self, builder: x509.CertificateRevocationListBuilder, hash_name: HashName
    ) -> x509.CertificateRevocationList:
        """Sign a complete CRL builder."""

    async def sign_ocsp_response(
        self, builder: ocsp.OCSPResponseBuilder, responder: x509.Certificate, hash_name: HashName
    ) -> ocsp.OCSPResponse:
        """Sign an OCSP response builder as ``responder`` (this key's certificate), which is
        named in the response by its subject (RFC 6960 §4.2.1 ResponderID byName)."""

    async def close(self) -> None:
        """Release what the key holds (token sessions); a no-op for file keys."""


def signature_hash_for(public_key: CaPublicKey) -> HashName:
    """The hash a CA signs its CRLs and OCSP responses with: one of the strength of its key
    (P-384 → SHA-384, P-521 → SHA-512, otherwise SHA-256)."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.key_size >= 521:
            return "sha512"
        if public_key.curve.key_size >= 384:
            return "sha384"
    return "sha256"


def describe_public_key(public_key: CaPublicKey) -> str:
    """``RSA 3072`` / ``EC P-384``, for listings."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"RSA {public_key.key_size}"
    names = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
    return f"EC {names.get(public_key.curve.name, public_key.curve.name)}"
