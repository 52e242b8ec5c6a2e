"""Real CAs on disk for the signer's unit tests (made by ``init_ca`` itself)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from acmegate.common.config import Config, parse_config
from acmegate.signer.setup.create import init_ca
from acmegate.signer.setup.files import CaFiles
from acmegate.signer.setup.keygen import KeyType
from tests.unit.signer.helpers import PASSPHRASE


@pytest.fixture
def passphrase(monkeypatch: pytest.MonkeyPatch) -> str:
    """The CA passphrase, also in ``ACMEGATE_CA_PASSPHRASE`` as the generated config expects."""
    monkeypatch.setenv("ACMEGATE_CA_PASSPHRASE", PASSPHRASE)
    return PASSPHRASE


MakeCa = Callable[..., tuple[CaFiles, Config]]


@pytest.fixture
def make_ca(tmp_path: Path, passphrase: str) -> MakeCa:
    """Create a root and an issuing CA in a fresh folder; return the files and their config."""
    count = 0

    def make(
        key_type: KeyType = "ec-p256", name: str = "issuing", **options: object
    ) -> tuple[CaFiles, Config]:
        nonlocal count
        count += 1
        out = tmp_path / f"ca{count}"
        files = init_ca(
            out,
            name=name,
            common_name="acmegate Test Issuing CA",
            subject=[("C", "DE"), ("O", "acmegate tests")],
            key_type=key_type,
            hash="sha256",
            passphrase=passphrase,
            **options,  # type: ignore[arg-type]
        )
        return files, parse_config(files.config_yaml, base_dir=out)

    return make
