"""A SoftHSM2 token for the tests: a private token directory and configuration per test run.

A PKCS#11 module reads its configuration once per process (C_Initialize) and sees the tokens
that exist then, so the token is made once per process, before any test loads the module,
and ``SOFTHSM2_CONF`` is exported so child processes (``acmegate`` commands, ``acmegate run``)
find the same token. Each test makes its own key in it, under a label of its own.
"""

from __future__ import annotations

import atexit
import functools
import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from acmegate.signer.ca_key import CaPublicKey
from acmegate.signer.pkcs11_key import generate_token_key

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
TOKEN_LABEL = "acmegate-tests"
PIN = "4711-test-pin"
SO_PIN = "0815-test-so-pin"


@dataclass(frozen=True)
class SoftHsm:
    module: str
    token_label: str
    pin: str
    conf: Path

    def new_key(self, key_type: str = "ec-p256") -> tuple[str, CaPublicKey]:
        """Generate a fresh key pair in the token; (its label, its public key)."""
        label = f"test-{key_type}-{secrets.token_hex(4)}"
        public_key = generate_token_key(
            module=self.module,
            token_label=self.token_label,
            key_label=label,
            pin=self.pin,
            key_type=key_type,
        )
        return label, public_key


@functools.cache
def softhsm() -> SoftHsm:
    """The process's SoftHSM2 token (skips the test when SoftHSM2 is not installed)."""
    if not (Path(MODULE).exists() and shutil.which("softhsm2-util")):
        pytest.skip("SoftHSM2 is not installed (Debian: apt-get install softhsm2)")
    folder = Path(tempfile.mkdtemp(prefix="acmegate-softhsm-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    (folder / "tokens").mkdir()
    conf = folder / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {folder / 'tokens'}\n"
        "objectstore.backend = file\n"
        "log.level = ERROR\n"
        "slots.removable = false\n"
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", TOKEN_LABEL,
         "--pin", PIN, "--so-pin", SO_PIN],
        check=True,
        capture_output=True,
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
    )  # fmt: skip
    import pkcs11

    if MODULE in getattr(pkcs11, "_loaded", {}):
        # Loaded earlier with another configuration: make it read ours (no session is open
        # between tests).
        pkcs11.lib(MODULE).reinitialize()
    return SoftHsm(MODULE, TOKEN_LABEL, PIN, conf)
