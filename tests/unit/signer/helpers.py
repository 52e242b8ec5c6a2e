"""Small helpers of the signer's unit tests."""

from __future__ import annotations

import subprocess

PASSPHRASE = "correct horse battery staple"


def openssl_verify(*args: str) -> subprocess.CompletedProcess[str]:
    """``openssl verify`` with ``args``; its output tells why when it fails."""
    return subprocess.run(["openssl", "verify", *args], capture_output=True, text=True, check=False)
