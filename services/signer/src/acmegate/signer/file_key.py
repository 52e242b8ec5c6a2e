"""CA keys read from an encrypted PKCS#8 PEM file and kept in memory.

RSA-3072/4096 signatures (~2-5 ms) run in a worker thread (OpenSSL releases the GIL while it
signs), while the cheap ones (ECDSA, RSA-2048: well under 0.3 ms) stay on the event loop,
where a thread hop would cost more than the signature.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509 import ocsp

from acmegate.common.config import SecretUnavailable
from acmegate.common.config.model import FileKey
from acmegate.signer.ca_key import CaKeyError, CaPrivateKey, CaPublicKey, HashName, hash_algorithm

_ENCRYPTED_PKCS8 = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"
# RSA keys at least this large sign in a worker thread (see the module docstring).
_OFFLOAD_RSA_BITS = 3072


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
    return _loaded(serialization.load_pem_private_key, data, passphrase, what=what)


def decrypt_der_private_key(data: bytes, passphrase: str | None, *, what: str) -> CaPrivateKey:
    """:func:`decrypt_private_key` for a DER key file (``ca import`` takes either)."""
    return _loaded(serialization.load_der_private_key, data, passphrase, what=what)


def _loaded(
    load: Callable[[bytes, bytes | None], PrivateKeyTypes],
    data: bytes,
    passphrase: str | None,
    *,
    what: str,
) -> CaPrivateKey:
    try:
        key = load(data, passphrase.encode("utf-8") if passphrase is not None else None)
    except TypeError as exc:
        # cryptography: a password was given for a clear key, or none for an encrypted one.
        raise CaKeyError(f"{what}: {exc}") from exc
    except ValueError as exc:
        # A wrong passphrase and a corrupt file look alike to OpenSSL ("bad decrypt").
        raise CaKeyError(f"{what} (wrong passphrase or damaged key)") from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise CaKeyError(f"{what}: a {type(key).__name__} cannot be a CA key (RSA or EC only)")
    return key
