"""``acmegate ca init`` and ``acmegate ca import``: create or adopt an issuing CA on disk.

``init_ca`` makes a root (or uses an existing one) and an issuing CA below it; ``import_ca``
adopts an issuing CA made elsewhere (an enterprise PKI's sub-CA). Both write the certificate,
the chain and the key re-encrypted as PKCS#8 with the operator's passphrase (files 0600), and
return the ``certificate_authorities:`` entry to paste into the configuration; the passphrase
itself is read from ``ACMEGATE_CA_PASSPHRASE`` at run time, never written anywhere.

With a :class:`TokenKey`, ``init_ca`` generates the issuing CA's key inside a PKCS#11 token
instead (non-extractable; see :mod:`acmegate.signer.pkcs11_key`), and the entry names the
token, the key label and the environment variable of the PIN.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from acmegate.common.clock import Clock, SystemClock
from acmegate.signer.chains import (
    ChainError,
    authority_key_identifier,
    check_ca_certificate,
    check_chain,
    describe,
    is_self_signed,
    load_pem_certificates,
    pem,
    same_public_key,
)
from acmegate.signer.keys import (
    CaKeyError,
    CaPrivateKey,
    CaPublicKey,
    decrypt_private_key,
    hash_algorithm,
)

KeyType = Literal["rsa2048", "rsa3072", "rsa4096", "ec-p256", "ec-p384"]
CaHash = Literal["sha256", "sha384"]
KEY_TYPES: tuple[KeyType, ...] = ("rsa2048", "rsa3072", "rsa4096", "ec-p256", "ec-p384")
PASSPHRASE_ENV = "ACMEGATE_CA_PASSPHRASE"  # noqa: S105 (a variable name, not a secret)
PIN_ENV = "ACMEGATE_PKCS11_PIN"

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
_CA_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_DOTTED_OID = re.compile(r"^[0-2](\.\d+)+$")
# Clock-skew margin: a device whose clock is a little behind must still accept the new CA.
_CA_BACKDATE = timedelta(hours=1)


class CaSetupError(Exception):
    """``ca init`` / ``ca import`` cannot proceed; the message says what to change."""


@dataclass(frozen=True)
class ExistingRoot:
    """A root CA to put the new issuing CA under, instead of creating one."""

    certificate_pem: bytes
    key_pem: bytes
    key_password: str | None = None


@dataclass(frozen=True)
class TokenKey:
    """Where a CA key lives (or is to be made) in a PKCS#11 token, and its PIN."""

    module: str
    token_label: str
    key_label: str
    pin: str
    # What the configuration entry names as the PIN's source (never the PIN itself).
    pin_env: str = PIN_ENV

    def describe(self) -> str:
        return f"PKCS#11 token {self.token_label!r} key {self.key_label!r}"


@dataclass(frozen=True)
class CaFiles:
    """What ``init_ca`` / ``import_ca`` wrote, and the configuration entry that uses it."""

    name: str
    certificate: Path
    key: Path | None  # None when the key is in a token
    chain: tuple[Path, ...]
    root_key: Path | None
    config_yaml: str

    @property
    def key_description(self) -> str:
        return str(self.key) if self.key is not None else "the token key"


def generate_key(key_type: KeyType) -> CaPrivateKey:
    """A new CA key of ``key_type``."""
    if key_type.startswith("rsa") and key_type[3:] in ("2048", "3072", "4096"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    raise CaSetupError(f"unknown key type {key_type!r}; one of {', '.join(KEY_TYPES)}")


def ca_serial_number() -> int:
    """A positive serial with 159 random bits (RFC 5280 §4.1.2.2: at most 20 octets)."""
    return secrets.randbits(159) | 1


def init_ca(
    out_dir: str | os.PathLike[str],
    *,
    name: str,
    common_name: str,
    subject: Sequence[tuple[str, str]] = (),
    key_type: KeyType = "ec-p384",
    hash: CaHash = "sha384",
    root_validity_years: int = 20,
    intermediate_validity_years: int = 10,
    passphrase: str,
    root: ExistingRoot | None = None,
    root_common_name: str | None = None,
    passphrase_env: str = PASSPHRASE_ENV,
    clock: Clock | None = None,
    token: TokenKey | None = None,
) -> CaFiles:
    """Create an issuing CA ``<name>.pem`` / ``<name>.key`` under a new or existing root.

    ``subject`` holds extra attributes (``("O", "Example")``, ``("C", "DE")``, dotted OIDs)
    placed before the CN in both subjects. A new root is written as ``root.pem`` and
    ``root.key``; an existing root's certificate is copied to ``root.pem`` and its key stays
    where it is. Keys are encrypted with ``passphrase``; nothing is overwritten. With
    ``token`` the issuing CA's key is generated in that token and no ``<name>.key`` is
    written (``passphrase`` then only protects a new root's key).
    """
    out = Path(out_dir)
    _check_name(name)
    if root is None or token is None:
        _check_passphrase(passphrase)
    if root_validity_years < 1 or intermediate_validity_years < 1:
        raise CaSetupError("validity periods are whole years, at least 1")
    if hash not in ("sha256", "sha384"):
        raise CaSetupError(f"unsupported hash {hash!r}; sha256 or sha384")
    algorithm = hash_algorithm(hash)
    extra = _subject_attributes(subject)
    now = (clock or SystemClock()).now().replace(microsecond=0)
    not_before = now - _CA_BACKDATE

    root_key_path: Path | None = out / "root.key"
    targets = [out / "root.pem", out / f"{name}.pem"]
    if token is None:
        targets.append(out / f"{name}.key")
    if root is None:
        targets.append(out / "root.key")
    else:
        root_key_path = None
    _refuse_existing(targets)

    if root is None:
        if intermediate_validity_years > root_validity_years:
            raise CaSetupError(
                f"the issuing CA ({intermediate_validity_years} years) cannot outlive "
                f"its root ({root_validity_years} years)"
            )
        root_key = generate_key(key_type)
        root_subject = x509.Name(
            [
                *extra,
                x509.NameAttribute(NameOID.COMMON_NAME, root_common_name or f"{common_name} Root"),
            ]
        )
        root_ski = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
        root_cert = (
            x509.CertificateBuilder()
            .subject_name(root_subject)
            .issuer_name(root_subject)
            .public_key(root_key.public_key())
            .serial_number(ca_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(_add_years(now, root_validity_years))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_ca_key_usage(digital_signature=False), critical=True)
            .add_extension(root_ski, critical=False)
            .sign(root_key, algorithm)
        )
    else:
        root_cert, root_key = _load_existing_root(root)

    key: CaPrivateKey | None = None
    if token is None:
        key = generate_key(key_type)
        public_key: CaPublicKey = key.public_key()
    else:
        public_key = generate_token_ca_key(token, key_type)
    issuing_subject = x509.Name([*extra, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    # The issuing CA ends no later than its root: relying parties reject a chain outside
    # either validity period, so years past the root's end would be an illusion.
    not_after = min(_add_years(now, intermediate_validity_years), root_cert.not_valid_after_utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(issuing_subject)
        .issuer_name(root_cert.subject)
        .public_key(public_key)
        .serial_number(ca_serial_number())
        .not_valid_before(max(not_before, root_cert.not_valid_before_utc))
        .not_valid_after(not_after)
        # pathlen:0: it issues end-entity certificates only, never another CA.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        # digitalSignature so that it may sign OCSP responses itself later.
        .add_extension(_ca_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(authority_key_identifier(root_cert), critical=False)
        .sign(root_key, algorithm)
    )

    out.mkdir(parents=True, exist_ok=True)
    root_pem_path = _write(out / "root.pem", pem(root_cert).encode("ascii"))
    if root is None:
        assert root_key_path is not None
        _write(root_key_path, _encrypt(root_key, passphrase), secret=True)
    cert_path = _write(out / f"{name}.pem", pem(certificate).encode("ascii"))
    key_path = None
    key_entry: Path | TokenKey
    if key is not None:
        key_path = _write(out / f"{name}.key", _encrypt(key, passphrase), secret=True)
        key_entry = key_path
    else:
        assert token is not None
        key_entry = token
    return CaFiles(
        name=name,
        certificate=cert_path,
        key=key_path,
        chain=(root_pem_path,),
        root_key=root_key_path,
        config_yaml=config_snippet(name, cert_path, (root_pem_path,), key_entry, passphrase_env),
    )


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


def import_ca(
    out_dir: str | os.PathLike[str],
    *,
    name: str,
    certificate_pem: bytes,
    key_pem: bytes,
    key_password: str | None,
    chain_pems: Sequence[bytes] = (),
    passphrase: str,
    passphrase_env: str = PASSPHRASE_ENV,
    clock: Clock | None = None,
) -> CaFiles:
    """Adopt an existing issuing CA: check it, re-encrypt its key, write ``<name>.*`` files.

    ``chain_pems`` are PEM bundles from the CA's issuer up to the root (each may hold several
    certificates); they are written, in order, to ``<name>-chain.pem``.
    """
    out = Path(out_dir)
    _check_name(name)
    _check_passphrase(passphrase)
    certificates = _load_certificates(certificate_pem, "the CA certificate")
    if len(certificates) != 1:
        raise CaSetupError(
            f"the CA certificate PEM holds {len(certificates)} certificates; "
            "pass the CA alone and its issuers as the chain"
        )
    certificate = certificates[0]
    chain = [c for bundle in chain_pems for c in _load_certificates(bundle, "the chain")]
    try:
        check_ca_certificate(certificate)
        check_chain(certificate, chain)
    except ChainError as exc:
        raise CaSetupError(str(exc)) from exc
    now = (clock or SystemClock()).now()
    if certificate.not_valid_after_utc <= now:
        raise CaSetupError(
            f"{describe(certificate)} expired on {certificate.not_valid_after_utc:%Y-%m-%d}"
        )
    key = _decrypt(key_pem, key_password, "the CA key")
    if not same_public_key(key.public_key(), certificate.public_key()):
        raise CaSetupError(f"the key does not belong to the certificate {describe(certificate)}")

    targets = [out / f"{name}.pem", out / f"{name}.key"]
    if chain:
        targets.append(out / f"{name}-chain.pem")
    _refuse_existing(targets)
    out.mkdir(parents=True, exist_ok=True)
    cert_path = _write(out / f"{name}.pem", pem(certificate).encode("ascii"))
    key_path = _write(out / f"{name}.key", _encrypt(key, passphrase), secret=True)
    chain_paths: tuple[Path, ...] = ()
    if chain:
        bundle = "".join(pem(c) for c in chain).encode("ascii")
        chain_paths = (_write(out / f"{name}-chain.pem", bundle),)
    return CaFiles(
        name=name,
        certificate=cert_path,
        key=key_path,
        chain=chain_paths,
        root_key=None,
        config_yaml=config_snippet(name, cert_path, chain_paths, key_path, passphrase_env),
    )


def config_snippet(
    name: str,
    certificate: Path,
    chain: Sequence[Path],
    key: Path | TokenKey,
    passphrase_env: str = PASSPHRASE_ENV,
) -> str:
    """The ``certificate_authorities:`` entry for these files (absolute paths)."""
    key_entry: dict[str, object]
    if isinstance(key, TokenKey):
        key_entry = {
            "type": "pkcs11",
            "module": key.module,
            "token_label": key.token_label,
            "key_label": key.key_label,
            "pin": {"env": key.pin_env},
        }
    else:
        key_entry = {
            "type": "file",
            "path": str(key.resolve()),
            "passphrase": {"env": passphrase_env},
        }
    entry = {
        "name": name,
        "certificate": str(certificate.resolve()),
        "chain": [str(p.resolve()) for p in chain],
        "key": key_entry,
    }
    text: str = yaml.safe_dump({"certificate_authorities": [entry]}, sort_keys=False)
    return text


# --- helpers ---------------------------------------------------------------------------------


def _check_name(name: str) -> None:
    if not _CA_NAME.match(name) or name == "root":
        raise CaSetupError(
            f"CA name {name!r}: use letters, digits, '.', '_' and '-' (it names the files), "
            "and not 'root'"
        )


def _check_passphrase(passphrase: str) -> None:
    if not passphrase:
        raise CaSetupError(f"a passphrase is required to encrypt the CA key (${PASSPHRASE_ENV})")


def _subject_attributes(subject: Sequence[tuple[str, str]]) -> list[x509.NameAttribute[str]]:
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


def _ca_key_usage(*, digital_signature: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _load_existing_root(root: ExistingRoot) -> tuple[x509.Certificate, CaPrivateKey]:
    certificates = _load_certificates(root.certificate_pem, "the root certificate")
    if len(certificates) != 1:
        raise CaSetupError("the root certificate PEM must hold exactly one certificate")
    certificate = certificates[0]
    try:
        check_ca_certificate(certificate)
    except ChainError as exc:
        raise CaSetupError(f"the root: {exc}") from exc
    if not is_self_signed(certificate):
        raise CaSetupError(
            f"{describe(certificate)} is not a self-signed root; "
            "to use an issuing CA made elsewhere, import it (`acmegate ca import`)"
        )
    key = _decrypt(root.key_pem, root.key_password, "the root key")
    if not same_public_key(key.public_key(), certificate.public_key()):
        raise CaSetupError(f"the root key does not belong to {describe(certificate)}")
    return certificate, key


def _load_certificates(data: bytes, what: str) -> list[x509.Certificate]:
    try:
        return load_pem_certificates(data, what=what)
    except ChainError as exc:
        raise CaSetupError(str(exc)) from exc


def _decrypt(data: bytes, password: str | None, what: str) -> CaPrivateKey:
    try:
        return decrypt_private_key(data, password or None, what=f"cannot load {what}")
    except CaKeyError as exc:
        raise CaSetupError(str(exc)) from exc


def _encrypt(key: CaPrivateKey, passphrase: str) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode("utf-8")),
    )


def _add_years(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February into a year without one
        return moment.replace(year=moment.year + years, day=28)


def _refuse_existing(paths: Sequence[Path]) -> None:
    existing = [str(p) for p in paths if p.exists()]
    if existing:
        raise CaSetupError(f"refusing to overwrite {', '.join(existing)}")


def _write(path: Path, data: bytes, *, secret: bool = False) -> Path:
    # O_EXCL: never replace a file that appeared meanwhile; keys are created 0600 from the
    # start rather than chmod-ed after, so there is no moment where they are world-readable.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    fd = os.open(path, flags, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path
