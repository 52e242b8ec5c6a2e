"""What a relying party (a RADIUS server) would say of an issued chain: ``openssl verify``."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

_PEM = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def verify_client_chain(root: Path, text: str, folder: Path, purpose: str = "sslclient") -> str:
    """``openssl verify -purpose sslclient`` (or ``purpose``) of the first certificate in
    ``text`` against ``root``, the certificates after it as intermediates; stdout and stderr,
    stripped.

    ``text`` may be a bare PEM chain or output with lines around it (simulate-device's)."""
    chain = _PEM.findall(text)
    (folder / "leaf.pem").write_text(chain[0] + "\n" if chain else text)
    (folder / "untrusted.pem").write_text("\n".join(chain[1:]) + "\n")
    done = subprocess.run(
        [
            "openssl",
            "verify",
            "-purpose",
            purpose,
            "-CAfile",
            str(root),
            "-untrusted",
            str(folder / "untrusted.pem"),
            str(folder / "leaf.pem"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return (done.stdout + done.stderr).strip()
