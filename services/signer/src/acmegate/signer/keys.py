"""Which :class:`~acmegate.signer.ca_key.CaKey` a ``certificate_authorities[].key`` entry
names, and where it lives in words (never the secret)."""

from __future__ import annotations

from acmegate.common.config.model import CertificateAuthorityConfig, FileKey, Pkcs11Key
from acmegate.signer.ca_key import CaKey
from acmegate.signer.file_key import FileCaKey


def open_ca_key(ca_name: str, config: FileKey | Pkcs11Key) -> CaKey:
    """The :class:`CaKey` a ``certificate_authorities[].key`` entry describes."""
    if isinstance(config, FileKey):
        return FileCaKey.load(ca_name, config)
    # Imported here: python-pkcs11 is only loaded where a token is configured.
    from acmegate.signer.pkcs11_key import Pkcs11CaKey

    return Pkcs11CaKey.open(ca_name, config)


def describe_key_storage(config: CertificateAuthorityConfig) -> str:
    """Where the key lives, for people (never the secret)."""
    key = config.key
    if isinstance(key, FileKey):
        return f"encrypted file {key.path} (passphrase from {key.passphrase.describe()})"
    return (
        f"PKCS#11 token {key.token_label!r}, key {key.key_label!r} ({key.module}; "
        f"PIN from {key.pin.describe()})"
    )
