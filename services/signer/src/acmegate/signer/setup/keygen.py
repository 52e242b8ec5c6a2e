"""New CA keys (in memory or inside a PKCS#11 token) and the subjects of new CA certificates."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from acmegate.signer.ca_key import CaKeyError, CaPrivateKey, CaPublicKey
from acmegate.signer.setup.files import CaSetupError, TokenKey

KeyType = Literal["rsa2048", "rsa3072", "rsa4096", "ec-p256", "ec-p384"]
CaHash = Literal["sha256", "sha384"]
KEY_TYPES: tuple[KeyType, ...] = ("rsa2048", "rsa3072", "rsa4096", "ec-p256", "ec-p384")

# Short names accepted for the extra subject attributes (RFC 4514 §3 plus common ones).
SUBJECT_ATTRIBUTES: dict[str, x509.ObjectIdentifier] = {
    "C": NameOID.COUNTRY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "L": NameOID.LOCALITY_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "DC": NameOID.DOMAIN_COMPONENT,
    "STREET": NameOID.STREET_ADDRESS,
    "serialNumber": NameOID.SERIAL_NUMBER,
    "organizationIdentifier": NameOID.ORGANIZATION_IDENTIFIER,
}
_DOTTED_OID = re.compile(r"^[0-2](\.\d+)+$")


def default_hash(key_type: KeyType) -> CaHash:
    """The certificate signature hash that matches a key's strength: SHA-384 for P-384,
    SHA-256 for P-256 and RSA (as CA/Browser Forum BR §7.1.3.2 pairs them)."""
    return "sha384" if key_type == "ec-p384" else "sha256"


def generate_key(key_type: KeyType) -> CaPrivateKey:
    """A new CA key of ``key_type``."""
    if key_type.startswith("rsa") and key_type[3:] in ("2048", "3072", "4096"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    raise CaSetupError(f"unknown key type {key_type!r}; one of {', '.join(KEY_TYPES)}")


def generate_token_ca_key(token: TokenKey, key_type: KeyType) -> CaPublicKey:
    """A new CA key pair inside ``token`` (non-extractable); its public key."""
    from acmegate.signer.pkcs11_key import generate_token_key

    try:
        return generate_token_key(
            module=token.module,
            token_label=token.token_label,
            key_label=token.key_label,
            pin=token.pin,
            key_type=key_type,
        )
    except CaKeyError as exc:
        raise CaSetupError(str(exc)) from exc


def subject_attributes(subject: Sequence[tuple[str, str]]) -> list[x509.NameAttribute[str]]:
    """Extra subject attributes (``("O", "Example")``, dotted OIDs) as X.509 attributes."""
    attributes = []
    for key, value in subject:
        if key in SUBJECT_ATTRIBUTES:
            oid = SUBJECT_ATTRIBUTES[key]
        elif _DOTTED_OID.match(key):
            oid = x509.ObjectIdentifier(key)
        elif key.upper() == "CN":
            raise CaSetupError("the CN comes from common_name; do not repeat it in the subject")
        else:
            known = ", ".join(SUBJECT_ATTRIBUTES)
            raise CaSetupError(f"unknown subject attribute {key!r}; use {known} or a dotted OID")
        if not value:
            raise CaSetupError(f"subject attribute {key} is empty")
        try:
            attributes.append(x509.NameAttribute(oid, value))
        except ValueError as exc:  # e.g. C must be two letters
            raise CaSetupError(f"subject attribute {key}={value!r}: {exc}") from exc
    return attributes
