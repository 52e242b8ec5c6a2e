"""Where a CA private key lives and how it signs.

Issuance never touches a private key object: it hands a finished builder to
:meth:`CaKey.sign_certificate` and gets a certificate back. So a key that never enters the
process (PKCS#11 token: SoftHSM2 or an HSM, as Boulder does through ``pkcs11key``,
acme-anchors.md §1.4) plugs in as one more :class:`CaKey` without changes to issuance.

Signing is ``async`` for the same reason: a token call blocks, and so does an RSA-3072/4096
signature (~2-5 ms); those run in a worker thread (OpenSSL releases the GIL while it signs),
while the cheap ones (ECDSA, RSA-2048: well under 0.3 ms) stay on the event loop, where a thread
hop would cost more than the signature.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Literal, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp

from acmegate.common.config import SecretUnavailable
from acmegate.common.config.model import FileKey, Pkcs11Key

CaPrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
CaPublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
HashName = Literal["sha256", "sha384", "sha512"]

SignatureHash = hashes.SHA256 | hashes.SHA384 | hashes.SHA512
_HASHES: dict[str, type[SignatureHash]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_ENCRYPTED_PKCS8 = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"
# RSA keys at least this large sign in a worker thread (see the module docstring).
_OFFLOAD_RSA_BITS = 3072


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


class FileCaKey:
    """A CA key read from an encrypted PKCS#8 PEM file and kept in memory."""

    def __init__(self, private_key: CaPrivateKey, description: str) -> None:
        self._key = private_key
        self._description = description
        self._offload = (
            isinstance(private_key, rsa.RSAPrivateKey) and private_key.key_size >= _OFFLOAD_RSA_BITS
        )

    @classmethod
    def load(cls, ca_name: str, config: FileKey) -> FileCaKey:
        """Read and decrypt ``config.path`` with the passphrase ``config.passphrase`` names."""
        where = f"certificate authority {ca_name!r}"
        source = config.passphrase.describe()
        try:
            data = Path(config.path).read_bytes()
        except OSError as exc:
            raise CaKeyError(f"{where}: cannot read key {config.path}: {exc.strerror}") from exc
        if _ENCRYPTED_PKCS8 not in data:
            raise CaKeyError(
                f"{where}: {config.path} is not an encrypted PKCS#8 PEM key "
                "(`acmegate ca import` re-encrypts a key with a passphrase)"
            )
        try:
            passphrase = config.passphrase.reveal()
        except SecretUnavailable as exc:
            raise CaKeyError(f"{where}: no passphrase for {config.path}: {exc}") from exc
        private_key = decrypt_private_key(
            data,
            passphrase,
            what=f"{where}: cannot decrypt {config.path} with the passphrase from {source}",
        )
        return cls(private_key, f"file {config.path}")

    @property
    def description(self) -> str:
        return self._description

    def public_key(self) -> CaPublicKey:
        return self._key.public_key()

    async def sign_certificate(
        self, builder: x509.CertificateBuilder, hash_name: HashName
    ) -> x509.Certificate:
        algorithm = hash_algorithm(hash_name)
        if self._offload:
            return await asyncio.to_thread(builder.sign, self._key, algorithm)
        return builder.sign(self._key, algorithm)

    async def sign_crl(
        self, builder: x509.CertificateRevocationListBuilder, hash_name: HashName
    ) -> x509.CertificateRevocationList:
        algorithm = hash_algorithm(hash_name)
        if self._offload:
            return await asyncio.to_thread(builder.sign, self._key, algorithm)
        return builder.sign(self._key, algorithm)

    async def sign_ocsp_response(
        self, builder: ocsp.OCSPResponseBuilder, responder: x509.Certificate, hash_name: HashName
    ) -> ocsp.OCSPResponse:
        algorithm = hash_algorithm(hash_name)
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.NAME, responder)
        if self._offload:
            return await asyncio.to_thread(builder.sign, self._key, algorithm)
        return builder.sign(self._key, algorithm)

    def sign_csr(self, subject: x509.Name, hash_name: HashName) -> x509.CertificateSigningRequest:
        """A CSR for this key (for ``acmegate ca csr``)."""
        return (
            x509.CertificateSigningRequestBuilder()
            .subject_name(subject)
            .sign(self._key, hash_algorithm(hash_name))
        )

    def sign_certificate_blocking(
        self, builder: x509.CertificateBuilder, hash_name: HashName
    ) -> x509.Certificate:
        """:meth:`sign_certificate` for command-line tools without an event loop."""
        return builder.sign(self._key, hash_algorithm(hash_name))

    async def close(self) -> None:
        return None


def decrypt_private_key(data: bytes, passphrase: str | None, *, what: str) -> CaPrivateKey:
    """Load a PEM private key usable by a CA (RSA or EC); ``what`` prefixes any error."""
    try:
        key = serialization.load_pem_private_key(
            data, passphrase.encode("utf-8") if passphrase is not None else None
        )
    except TypeError as exc:
        # cryptography: a password was given for a clear key, or none for an encrypted one.
        raise CaKeyError(f"{what}: {exc}") from exc
    except ValueError as exc:
        # A wrong passphrase and a corrupt file look alike to OpenSSL ("bad decrypt").
        raise CaKeyError(f"{what} (wrong passphrase or damaged key)") from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise CaKeyError(f"{what}: a {type(key).__name__} cannot be a CA key (RSA or EC only)")
    return key


def open_ca_key(ca_name: str, config: FileKey | Pkcs11Key) -> CaKey:
    """The :class:`CaKey` a ``certificate_authorities[].key`` entry describes."""
    if isinstance(config, FileKey):
        return FileCaKey.load(ca_name, config)
    # Imported here: python-pkcs11 is only loaded where a token is configured.
    from acmegate.signer.pkcs11_key import Pkcs11CaKey

    return Pkcs11CaKey.open(ca_name, config)


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
