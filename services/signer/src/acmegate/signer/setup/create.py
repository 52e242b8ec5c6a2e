"""``acmegate ca init`` and ``acmegate ca import``: create or adopt an issuing CA on disk.

``init_ca`` makes a root (or uses an existing one) and an issuing CA below it; ``import_ca``
adopts an issuing CA made elsewhere (an enterprise PKI's sub-CA). Both write the certificate,
the chain and the key re-encrypted with the operator's passphrase (:mod:`.files`), and return
the ``certificate_authorities:`` entry to paste into the configuration.

With a :class:`TokenKey`, ``init_ca`` generates the issuing CA's key inside a PKCS#11 token
instead (non-extractable; see :mod:`acmegate.signer.pkcs11_key`), and the entry names the
token, the key label and the environment variable of the PIN.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from acmegate.common.clock import Clock, SystemClock
from acmegate.common.config import Secret
from acmegate.signer.ca_key import CaPrivateKey, CaPublicKey, hash_algorithm
from acmegate.signer.chains import (
    ChainError,
    authority_key_identifier,
    check_ca_certificate,
    check_validity,
    describe,
    is_self_signed,
    pem,
    same_public_key,
    validate_path,
)
from acmegate.signer.setup.files import (
    CaFiles,
    CaSetupError,
    TokenKey,
    check_common_name,
    check_name,
    check_passphrase,
    config_snippet,
    decrypt_key,
    encrypt_key,
    key_folder,
    load_certificates,
    refuse_existing,
    write_file,
)
from acmegate.signer.setup.keygen import (
    CaHash,
    KeyType,
    default_hash,
    generate_key,
    generate_token_ca_key,
    subject_attributes,
)

# Clock-skew margin: a device whose clock is a little behind must still accept the new CA.
_CA_BACKDATE = timedelta(hours=1)


@dataclass(frozen=True)
class ExistingRoot:
    """A root CA to put the new issuing CA under, instead of creating one."""

    certificate_pem: bytes
    key_pem: bytes
    key_password: str | None = None


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
    hash: CaHash | None = None,
    root_validity_years: int = 20,
    intermediate_validity_years: int = 10,
    passphrase: str,
    root: ExistingRoot | None = None,
    root_common_name: str | None = None,
    passphrase_source: Secret | None = None,
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
    check_name(name)
    check_common_name(common_name)
    if root is None:
        root_common_name = root_common_name or f"{common_name} Root"
        check_common_name(root_common_name, "the root's common name")
    if root is None or token is None:
        check_passphrase(passphrase)
    if root_validity_years < 1 or intermediate_validity_years < 1:
        raise CaSetupError("validity periods are whole years, at least 1")
    hash = hash or default_hash(key_type)
    if hash not in ("sha256", "sha384"):
        raise CaSetupError(f"unsupported hash {hash!r}; sha256 or sha384")
    algorithm = hash_algorithm(hash)
    extra = subject_attributes(subject)
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
    refuse_existing(targets)

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
                x509.NameAttribute(NameOID.COMMON_NAME, root_common_name or common_name),
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
        root_cert, root_key = _load_existing_root(root, now)

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
    try:
        # What relying parties will check; an existing root may forbid CAs below it.
        validate_path(certificate, [root_cert], now=now)
    except ChainError as exc:
        raise CaSetupError(str(exc)) from exc

    key_folder(out)
    root_pem_path = write_file(out / "root.pem", pem(root_cert).encode("ascii"))
    if root is None:
        assert root_key_path is not None
        write_file(root_key_path, encrypt_key(root_key, passphrase), secret=True)
    cert_path = write_file(out / f"{name}.pem", pem(certificate).encode("ascii"))
    key_path = None
    key_entry: Path | TokenKey
    if key is not None:
        key_path = write_file(out / f"{name}.key", encrypt_key(key, passphrase), secret=True)
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
        config_yaml=config_snippet(name, cert_path, (root_pem_path,), key_entry, passphrase_source),
    )


def import_ca(
    out_dir: str | os.PathLike[str],
    *,
    name: str,
    certificate_pem: bytes,
    key_pem: bytes,
    key_password: str | None,
    chain_pems: Sequence[bytes] = (),
    passphrase: str,
    passphrase_source: Secret | None = None,
    clock: Clock | None = None,
) -> CaFiles:
    """Adopt an existing issuing CA: check it, re-encrypt its key, write ``<name>.*`` files.

    ``chain_pems`` are PEM bundles from the CA's issuer up to the root (each may hold several
    certificates); they are written, in order, to ``<name>-chain.pem``.
    """
    out = Path(out_dir)
    check_name(name)
    check_passphrase(passphrase)
    certificates = load_certificates(certificate_pem, "the CA certificate")
    if len(certificates) != 1:
        raise CaSetupError(
            f"the CA certificate PEM holds {len(certificates)} certificates; "
            "pass the CA alone and its issuers as the chain"
        )
    certificate = certificates[0]
    chain = [c for bundle in chain_pems for c in load_certificates(bundle, "the chain")]
    try:
        validate_path(certificate, chain, now=(clock or SystemClock()).now())
    except ChainError as exc:
        raise CaSetupError(str(exc)) from exc
    key = decrypt_key(key_pem, key_password, "the CA key")
    if not same_public_key(key.public_key(), certificate.public_key()):
        raise CaSetupError(f"the key does not belong to the certificate {describe(certificate)}")

    targets = [out / f"{name}.pem", out / f"{name}.key"]
    if chain:
        targets.append(out / f"{name}-chain.pem")
    refuse_existing(targets)
    key_folder(out)
    cert_path = write_file(out / f"{name}.pem", pem(certificate).encode("ascii"))
    key_path = write_file(out / f"{name}.key", encrypt_key(key, passphrase), secret=True)
    chain_paths: tuple[Path, ...] = ()
    if chain:
        bundle = "".join(pem(c) for c in chain).encode("ascii")
        chain_paths = (write_file(out / f"{name}-chain.pem", bundle),)
    return CaFiles(
        name=name,
        certificate=cert_path,
        key=key_path,
        chain=chain_paths,
        root_key=None,
        config_yaml=config_snippet(name, cert_path, chain_paths, key_path, passphrase_source),
    )


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


def _load_existing_root(root: ExistingRoot, now: datetime) -> tuple[x509.Certificate, CaPrivateKey]:
    certificates = load_certificates(root.certificate_pem, "the root certificate")
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
    try:
        check_validity(certificate, now)
    except ChainError as exc:
        raise CaSetupError(f"the root: {exc}") from exc
    key = decrypt_key(root.key_pem, root.key_password, "the root key")
    if not same_public_key(key.public_key(), certificate.public_key()):
        raise CaSetupError(f"the root key does not belong to {describe(certificate)}")
    return certificate, key


def _add_years(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February into a year without one
        return moment.replace(year=moment.year + years, day=28)
