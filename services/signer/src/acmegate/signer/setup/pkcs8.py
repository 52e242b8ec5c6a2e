"""Encrypted PKCS#8 private keys with a current work factor (RFC 5958 §3, RFC 8018 PBES2).

``cryptography`` writes encrypted PKCS#8 with PBKDF2-HMAC-SHA256 at 2,048 iterations and does
not let the caller choose more; a CA key file that leaks is then cheap to attack offline. So
the EncryptedPrivateKeyInfo is assembled here: PBES2 with PBKDF2-HMAC-SHA256 at
:data:`KDF_ITERATIONS` (OWASP's 2023 figure for that PRF), a random 16-octet salt, and
AES-256-CBC with a random IV (RFC 8018 §6.2, §A.2, §A.4, §B.2.5). OpenSSL and ``cryptography``
read such keys as they read their own, and keys written before keep loading.
"""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from pyasn1.codec.der import encoder
from pyasn1.type import univ

from acmegate.signer.ca_key import CaPrivateKey

KDF_ITERATIONS = 600_000
_PBES2 = "1.2.840.113549.1.5.13"
_PBKDF2 = "1.2.840.113549.1.5.12"
_HMAC_WITH_SHA256 = "1.2.840.113549.2.9"
_AES256_CBC = "2.16.840.1.101.3.4.1.42"


def _sequence(*components: univ.Asn1Item) -> univ.Sequence:
    sequence = univ.Sequence()
    for position, component in enumerate(components):
        sequence.setComponentByPosition(position, component)
    return sequence


def encrypt_private_key(
    key: CaPrivateKey, passphrase: str, *, iterations: int = KDF_ITERATIONS
) -> bytes:
    """``key`` as an ``ENCRYPTED PRIVATE KEY`` PEM (module doc)."""
    salt, iv = os.urandom(16), os.urandom(16)
    kek = PBKDF2HMAC(hashes.SHA256(), 32, salt, iterations).derive(passphrase.encode("utf-8"))
    plain = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    padder = padding.PKCS7(algorithms.AES.block_size).padder()
    encryptor = Cipher(algorithms.AES(kek), modes.CBC(iv)).encryptor()
    encrypted = encryptor.update(padder.update(plain) + padder.finalize()) + encryptor.finalize()
    pbkdf2_params = _sequence(
        univ.OctetString(salt),
        univ.Integer(iterations),
        _sequence(univ.ObjectIdentifier(_HMAC_WITH_SHA256), univ.Null("")),
    )
    pbes2_params = _sequence(
        _sequence(univ.ObjectIdentifier(_PBKDF2), pbkdf2_params),
        _sequence(univ.ObjectIdentifier(_AES256_CBC), univ.OctetString(iv)),
    )
    info = _sequence(
        _sequence(univ.ObjectIdentifier(_PBES2), pbes2_params), univ.OctetString(encrypted)
    )
    body = base64.encodebytes(encoder.encode(info)).replace(b"\n", b"")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return (
        b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
        + b"\n".join(lines)
        + b"\n-----END ENCRYPTED PRIVATE KEY-----\n"
    )
