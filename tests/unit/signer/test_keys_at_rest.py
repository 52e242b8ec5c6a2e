"""CA keys at rest: encrypted with a current work factor (and old keys still read), a
passphrase long enough to resist guessing, a key folder only its owner can enter, and a word
from ``ca init`` about the root key it leaves next to the issuing key."""

from __future__ import annotations

import base64
import contextlib
import io
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pyasn1.codec.der import decoder

from acmegate.cli.main import main
from acmegate.common.config.model import FileKey
from acmegate.common.config.secrets import Secret
from acmegate.signer.file_key import FileCaKey
from acmegate.signer.setup.create import init_ca
from acmegate.signer.setup.files import CaSetupError
from tests.unit.signer.conftest import MakeCa
from tests.unit.signer.helpers import PASSPHRASE

PBES2 = "1.2.840.113549.1.5.13"
PBKDF2 = "1.2.840.113549.1.5.12"
HMAC_SHA256 = "1.2.840.113549.2.9"
AES256_CBC = "2.16.840.1.101.3.4.1.42"


def encryption_of(pem: bytes) -> tuple[str, str, int, str, str]:
    """(scheme, KDF, iterations, PRF, cipher) of an encrypted PKCS#8 key (RFC 8018 §A.2, §A.4)."""
    body = b"".join(pem.strip().splitlines()[1:-1])
    info, _ = decoder.decode(base64.b64decode(body))
    algorithm = info[0]
    kdf, cipher = algorithm[1][0], algorithm[1][1]
    params = kdf[1]
    prf = str(params[2][0]) if len(params) > 2 else "hmacWithSHA1 (default)"
    return str(algorithm[0]), str(kdf[0]), int(params[1]), prf, str(cipher[0])


def test_new_keys_use_pbkdf2_sha256_with_600000_rounds_and_aes_256(make_ca: MakeCa) -> None:
    files, _ = make_ca()
    assert files.root_key is not None
    for path in (files.key, files.root_key):
        scheme, kdf, rounds, prf, cipher = encryption_of(path.read_bytes())
        assert (scheme, kdf, prf, cipher) == (PBES2, PBKDF2, HMAC_SHA256, AES256_CBC)
        assert rounds >= 600_000
        serialization.load_pem_private_key(path.read_bytes(), PASSPHRASE.encode())


def test_keys_encrypted_the_old_way_still_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    old = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSPHRASE.encode()),
    )
    assert encryption_of(old)[2] == 2048  # what acmegate wrote before
    (tmp_path / "old.key").write_bytes(old)
    monkeypatch.setenv("OLD_KEY_PASSPHRASE", PASSPHRASE)
    loaded = FileCaKey.load(
        "old", FileKey(path=str(tmp_path / "old.key"), passphrase=Secret(env="OLD_KEY_PASSPHRASE"))
    )
    assert loaded.public_key() == key.public_key()


@pytest.mark.parametrize("passphrase", ["", "short", "eleven-char"])
def test_a_passphrase_shorter_than_12_characters_is_refused(
    tmp_path: Path, passphrase: str
) -> None:
    with pytest.raises(CaSetupError, match="at least 12 characters"):
        init_ca(tmp_path / "ca", name="devices", common_name="Devices CA", passphrase=passphrase)
    assert not (tmp_path / "ca").exists()


def test_the_key_folder_is_created_0700_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        files = init_ca(
            tmp_path / "new" / "ca", name="devices", common_name="Devices CA", passphrase=PASSPHRASE
        )
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "new" / "ca").stat().st_mode) == 0o700
    assert files.key is not None and stat.S_IMODE(files.key.stat().st_mode) == 0o600


def test_ca_init_says_the_root_key_is_online_and_how_to_take_it_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACMEGATE_CA_PASSPHRASE", PASSPHRASE)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(
            ["ca", "init", "--out", str(tmp_path / "ca"), "--name", "devices",
             "--common-name", "Devices CA"]
        )  # fmt: skip
    assert code == 0
    assert "certificate_authorities:" in out.getvalue()
    text = err.getvalue()
    root_key = tmp_path / "ca" / "root.key"
    assert f"the root CA's key {root_key} is online, next to the issuing CA's key" in text
    assert "move it offline" in text and "--root-cert" in text
