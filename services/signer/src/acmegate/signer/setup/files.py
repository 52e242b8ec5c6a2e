"""What CA setup writes and reads: CA names, encrypted key files, certificates and the
``certificate_authorities:`` entry that uses them.

Keys are re-encrypted as PKCS#8 with the operator's passphrase (at least
:data:`MIN_PASSPHRASE_LENGTH` characters; PBKDF2 at a current work factor, :mod:`.pkcs8`) and
written 0600 into a folder created 0700; the passphrase itself is read at run time (an
environment variable or a file), never written anywhere. Nothing is ever overwritten.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from cryptography import x509

from acmegate.common.config import Secret
from acmegate.signer.ca_key import CaKeyError, CaPrivateKey
from acmegate.signer.chains import ChainError, load_pem_certificates
from acmegate.signer.file_key import decrypt_der_private_key, decrypt_private_key
from acmegate.signer.setup.pkcs8 import encrypt_private_key

PASSPHRASE_ENV = "ACMEGATE_CA_PASSPHRASE"  # noqa: S105 (a variable name, not a secret)
PIN_ENV = "ACMEGATE_PKCS11_PIN"
# A key file that leaks can be attacked offline: the passphrase must resist guessing, whatever
# the KDF's work factor (NIST SP 800-63B §5.1.1 asks 8 for online secrets; offline needs more).
MIN_PASSPHRASE_LENGTH = 12
UB_COMMON_NAME = 64
_PEM_BEGIN = b"-----BEGIN"
_CA_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class CaSetupError(Exception):
    """``ca init`` / ``ca import`` cannot proceed; the message says what to change."""


@dataclass(frozen=True)
class TokenKey:
    """Where a CA key lives (or is to be made) in a PKCS#11 token, and its PIN."""

    module: str
    token_label: str
    key_label: str
    pin: str
    # What the configuration entry names as the PIN's source (never the PIN itself).
    pin_source: Secret = field(default_factory=lambda: Secret(env=PIN_ENV))

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
    # What an install with ``force`` replaced.
    replaced: tuple[Path, ...] = ()

    @property
    def key_description(self) -> str:
        return str(self.key) if self.key is not None else "the token key"


def config_snippet(
    name: str,
    certificate: Path,
    chain: Sequence[Path],
    key: Path | TokenKey,
    passphrase_source: Secret | None = None,
) -> str:
    """The ``certificate_authorities:`` entry for these files (absolute paths)."""
    key_entry: dict[str, object]
    if isinstance(key, TokenKey):
        key_entry = {
            "type": "pkcs11",
            "module": key.module,
            "token_label": key.token_label,
            "key_label": key.key_label,
            "pin": _secret_entry(key.pin_source),
        }
    else:
        key_entry = {
            "type": "file",
            "path": str(key.resolve()),
            "passphrase": _secret_entry(passphrase_source or Secret(env=PASSPHRASE_ENV)),
        }
    entry = {
        "name": name,
        "certificate": str(certificate.resolve()),
        "chain": [str(p.resolve()) for p in chain],
        "key": key_entry,
    }
    text: str = yaml.safe_dump({"certificate_authorities": [entry]}, sort_keys=False)
    return text


def _secret_entry(source: Secret) -> dict[str, str]:
    return {"env": source.env} if source.env is not None else {"file": str(source.file)}


def check_common_name(value: str, what: str = "the common name") -> None:
    """``CaSetupError`` unless ``value`` fits a CN (RFC 5280 §A.1 ub-common-name: 1..64)."""
    if not 1 <= len(value) <= UB_COMMON_NAME:
        raise CaSetupError(
            f"{what}: a CN has 1 to {UB_COMMON_NAME} characters (RFC 5280 ub-common-name); "
            f"{value!r} has {len(value)}"
        )


def check_name(name: str) -> None:
    """``CaSetupError`` unless ``name`` can name a CA and its files."""
    if not _CA_NAME.match(name) or name == "root":
        raise CaSetupError(
            f"CA name {name!r}: use letters, digits, '.', '_' and '-' (it names the files), "
            "and not 'root'"
        )


def check_passphrase(passphrase: str) -> None:
    """``CaSetupError`` for a passphrase shorter than :data:`MIN_PASSPHRASE_LENGTH`."""
    if len(passphrase) < MIN_PASSPHRASE_LENGTH:
        raise CaSetupError(
            f"the passphrase that encrypts the CA key must have at least "
            f"{MIN_PASSPHRASE_LENGTH} characters (it has {len(passphrase)})"
        )


def load_certificates(data: bytes, what: str) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle, or the one of a DER file (``.cer``, as Windows and
    AD CS export them); ``CaSetupError`` naming ``what`` otherwise."""
    if _PEM_BEGIN not in data:
        try:
            return [x509.load_der_x509_certificate(data)]
        except ValueError:
            raise CaSetupError(f"{what} is neither a PEM nor a DER certificate") from None
    try:
        return load_pem_certificates(data, what=what)
    except ChainError as exc:
        raise CaSetupError(str(exc)) from exc


def decrypt_key(data: bytes, password: str | None, what: str) -> CaPrivateKey:
    """A CA private key from PEM or DER (PKCS#8 or the traditional forms; ``password`` if
    encrypted); ``CaSetupError`` otherwise."""
    try:
        if _PEM_BEGIN not in data:
            return decrypt_der_private_key(data, password or None, what=f"cannot load {what}")
        return decrypt_private_key(data, password or None, what=f"cannot load {what}")
    except CaKeyError as exc:
        raise CaSetupError(str(exc)) from exc


def encrypt_key(key: CaPrivateKey, passphrase: str) -> bytes:
    """``key`` as PKCS#8 PEM encrypted with ``passphrase`` (:mod:`.pkcs8`)."""
    return encrypt_private_key(key, passphrase)


def key_folder(path: Path) -> None:
    """Create ``path`` for key files, 0700 whatever the umask (an existing one is kept)."""
    try:
        path.mkdir(parents=True, mode=0o700)
    except FileExistsError:
        return
    # mkdir's mode is masked by the umask; only the owner may list or enter the folder.
    os.chmod(path, 0o700)


def refuse_existing(paths: Sequence[Path], hint: str = "") -> None:
    """``CaSetupError`` if any of ``paths`` exists: setup never overwrites a file."""
    existing = [str(p) for p in paths if p.exists()]
    if existing:
        raise CaSetupError(f"refusing to overwrite {', '.join(existing)}{hint}")


def replace_file(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically: written beside it, synced, then renamed, so
    a reader sees the old file or the new one, never a part."""
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temporary, mode)
    os.replace(temporary, path)


def write_file(path: Path, data: bytes, *, secret: bool = False) -> Path:
    """Create ``path`` with ``data`` (0600 for a ``secret``); fails if it exists."""
    # O_EXCL: never replace a file that appeared meanwhile; keys are created 0600 from the
    # start rather than chmod-ed after, so there is no moment where they are world-readable.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    fd = os.open(path, flags, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path
