"""``acmegate ca csr`` and ``acmegate ca install``: an issuing CA signed by an enterprise root.

The guide's "Creating an Intermediate CA" under the organisation's own root (AD CS, an
offline root): :func:`create_csr` makes the issuing CA's key (an encrypted file, or inside a
PKCS#11 token) and a PKCS#10 request for it; the root's operators sign it with their tools;
:func:`install_ca` then checks what came back (a CA certificate for this very key, chaining
to the given root) and writes the files the configuration entry names.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from acmegate.common.clock import Clock, SystemClock
from acmegate.common.config import Secret
from acmegate.signer.authorities import close_key
from acmegate.signer.ca_key import CaKeyError, CaPublicKey
from acmegate.signer.chains import (
    ChainError,
    describe,
    pem,
    same_public_key,
    validate_path,
)
from acmegate.signer.file_key import FileCaKey
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
    replace_file,
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

if TYPE_CHECKING:
    from acmegate.signer.pkcs11_key import Pkcs11CaKey


@dataclass(frozen=True)
class CsrFiles:
    """What :func:`create_csr` wrote."""

    name: str
    csr: Path
    key: Path | None  # None when the key is in a token
    key_description: str


def create_csr(
    out_dir: str | os.PathLike[str],
    *,
    name: str,
    common_name: str,
    subject: Sequence[tuple[str, str]] = (),
    key_type: KeyType = "ec-p384",
    hash: CaHash | None = None,
    passphrase: str | None = None,
    token: TokenKey | None = None,
) -> CsrFiles:
    """Generate the issuing CA's key and write ``<name>.csr`` (PEM) for the root to sign.

    The key is ``<name>.key`` (encrypted PKCS#8, 0600) or, with ``token``, a
    non-extractable key pair in the token. The request carries the subject only: the root's
    operators decide the extensions (basicConstraints CA, keyUsage keyCertSign/cRLSign).
    """
    out = Path(out_dir)
    check_name(name)
    check_common_name(common_name)
    if token is None:
        check_passphrase(passphrase or "")
    hash = hash or default_hash(key_type)
    if hash not in ("sha256", "sha384"):
        raise CaSetupError(f"unsupported hash {hash!r}; sha256 or sha384")
    subject_name = x509.Name(
        [*subject_attributes(subject), x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    )
    targets = [out / f"{name}.csr"] + ([out / f"{name}.key"] if token is None else [])
    refuse_existing(targets)
    key_folder(out)
    if token is None:
        assert passphrase
        private_key = generate_key(key_type)
        request = FileCaKey(private_key, "new key").sign_csr(subject_name, hash)
        key_path: Path | None = write_file(
            out / f"{name}.key", encrypt_key(private_key, passphrase), secret=True
        )
        description = str(key_path)
    else:
        generate_token_ca_key(token, key_type)
        key = _open_token_key(token)
        try:
            request = key.sign_csr(subject_name, hash)
        finally:
            close_key(key)
        key_path = None
        description = token.describe()
    csr_path = write_file(out / f"{name}.csr", request.public_bytes(serialization.Encoding.PEM))
    return CsrFiles(name=name, csr=csr_path, key=key_path, key_description=description)


def install_ca(
    out_dir: str | os.PathLike[str],
    *,
    name: str,
    certificate_pem: bytes,
    chain_pems: Sequence[bytes],
    passphrase: str | None = None,
    token: TokenKey | None = None,
    passphrase_source: Secret | None = None,
    clock: Clock | None = None,
    force: bool = False,
) -> CaFiles:
    """Install the certificate the root issued for :func:`create_csr`'s key.

    Checks the certificate and ``chain_pems`` (its issuer up to the root) as relying parties
    will (:func:`~acmegate.signer.chains.validate_path`) and that it is for the key
    ``<name>.key`` (or the token key); then writes ``<name>.pem`` and ``<name>-chain.pem``.
    With ``force`` those replace the installed ones (a renewed certificate for the same key);
    without it, nothing is overwritten.
    """
    out = Path(out_dir)
    check_name(name)
    certificates = load_certificates(certificate_pem, "the signed certificate")
    if len(certificates) != 1:
        raise CaSetupError(
            f"the signed certificate PEM holds {len(certificates)} certificates; "
            "pass the issuing CA alone and the root (and any intermediates) as the chain"
        )
    certificate = certificates[0]
    chain = [c for bundle in chain_pems for c in load_certificates(bundle, "the chain")]
    try:
        validate_path(certificate, chain, now=(clock or SystemClock()).now())
    except ChainError as exc:
        raise CaSetupError(str(exc)) from exc
    key_entry: Path | TokenKey
    if token is None:
        key_path = out / f"{name}.key"
        try:
            data = key_path.read_bytes()
        except OSError as exc:
            raise CaSetupError(
                f"cannot read the key {key_path} that `ca csr` made: {exc.strerror}"
            ) from exc
        public_key: CaPublicKey = decrypt_key(data, passphrase, f"the key {key_path}").public_key()
        key_entry = key_path
        where = str(key_path)
    else:
        key = _open_token_key(token)
        public_key = key.public_key()
        close_key(key)
        key_entry = token
        where = token.describe()
    if not same_public_key(public_key, certificate.public_key()):
        raise CaSetupError(
            f"the signed certificate ({describe(certificate)}) is not for the key {where}; "
            "was it issued for another request?"
        )
    cert_path, chain_path = out / f"{name}.pem", out / f"{name}-chain.pem"
    contents = {
        cert_path: pem(certificate).encode("ascii"),
        chain_path: "".join(pem(c) for c in chain).encode("ascii"),
    }
    replaced: tuple[Path, ...] = ()
    if force:
        replaced = tuple(path for path in contents if path.exists())
        for path, data in contents.items():
            replace_file(path, data)
    else:
        refuse_existing(
            list(contents), "; to install a renewed certificate for the same key, add --force"
        )
        for path, data in contents.items():
            write_file(path, data)
    return CaFiles(
        name=name,
        certificate=cert_path,
        key=key_entry if isinstance(key_entry, Path) else None,
        chain=(chain_path,),
        root_key=None,
        config_yaml=config_snippet(name, cert_path, (chain_path,), key_entry, passphrase_source),
        replaced=replaced,
    )


def _open_token_key(token: TokenKey) -> Pkcs11CaKey:
    from acmegate.signer.pkcs11_key import Pkcs11CaKey

    try:
        return Pkcs11CaKey.open_with_pin(
            module=token.module,
            token_label=token.token_label,
            key_label=token.key_label,
            pin=token.pin,
        )
    except CaKeyError as exc:
        raise CaSetupError(str(exc)) from exc
