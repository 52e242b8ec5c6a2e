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
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509

from acmegate.signer.ca_key import CaKeyError, CaPrivateKey
from acmegate.signer.chains import ChainError, load_pem_certificates
from acmegate.signer.file_key import decrypt_private_key
from acmegate.signer.setup.pkcs8 import encrypt_private_key

PASSPHRASE_ENV = "ACMEGATE_CA_PASSPHRASE"  # noqa: S105 (a variable name, not a secret)
PIN_ENV = "ACMEGATE_PKCS11_PIN"
# A key file that leaks can be attacked offline: the passphrase must resist guessing, whatever
# the KDF's work factor (NIST SP 800-63B §5.1.1 asks 8 for online secrets; offline needs more).
MIN_PASSPHRASE_LENGTH = 12
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
    """Every certificate of a PEM bundle; ``CaSetupError`` naming ``what`` otherwise."""
    try:
        return load_pem_certificates(data, what=what)
    except ChainError as exc:
        raise CaSetupError(str(exc)) from exc


def decrypt_key(data: bytes, password: str | None, what: str) -> CaPrivateKey:
    """A CA private key from PEM (``password`` if encrypted); ``CaSetupError`` otherwise."""
    try:
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


def refuse_existing(paths: Sequence[Path]) -> None:
    """``CaSetupError`` if any of ``paths`` exists: setup never overwrites a file."""
    existing = [str(p) for p in paths if p.exists()]
    if existing:
        raise CaSetupError(f"refusing to overwrite {', '.join(existing)}")


def write_file(path: Path, data: bytes, *, secret: bool = False) -> Path:
    """Create ``path`` with ``data`` (0600 for a ``secret``); fails if it exists."""
    # O_EXCL: never replace a file that appeared meanwhile; keys are created 0600 from the
    # start rather than chmod-ed after, so there is no moment where they are world-readable.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    fd = os.open(path, flags, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path
