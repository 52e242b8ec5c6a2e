"""A whole gateway with every public edge open: ACME, the admin listener and RADIUS, with the
tokens a test needs to reach them."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from acmegate.testkit.apple_ca import AttestationCA
from tests.support.gateway import (
    Gateway,
    GatewayFiles,
    edge_overrides,
    free_port,
    gateway_config,
    running_gateway,
)


@dataclass
class Edges:
    """The running gateway and where each of its edges listens."""

    gateway: Gateway
    admin_url: str
    admin_token: str
    radius_url: str
    radius_token: str

    @property
    def directory_url(self) -> str:
        return self.gateway.directory_url

    @property
    def acme_url(self) -> str:
        return self.gateway.directory_url.removesuffix("/acme/directory")


@dataclass
class _EdgeFiles:
    files: GatewayFiles
    admin_port: int
    admin_token: str
    radius_port: int
    radius_token: str


def _edge_files(
    folder: Path,
    attestation_ca: AttestationCA,
    monkeypatch: pytest.MonkeyPatch,
    admin_token_env: str,
    overrides: dict[str, Any] | None,
) -> _EdgeFiles:
    folder.mkdir(parents=True, exist_ok=True)
    admin_token = secrets.token_urlsafe(24)
    monkeypatch.setenv(admin_token_env, admin_token)
    radius_token = secrets.token_urlsafe(24)
    (folder / "radius-token").write_text(radius_token)
    admin_port, radius_port = free_port(), free_port()
    files = gateway_config(
        folder,
        attestation_ca,
        overrides={**edge_overrides(admin_port, radius_port, admin_token_env), **(overrides or {})},
    )
    return _EdgeFiles(files, admin_port, admin_token, radius_port, radius_token)


@contextlib.asynccontextmanager
async def running_edges(
    folder: Path,
    attestation_ca: AttestationCA,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    *,
    admin_token_env: str,
    overrides: dict[str, Any] | None = None,
) -> AsyncIterator[Edges]:
    """The gateway of ``folder`` on ``database_url`` with its admin listener (token in
    ``admin_token_env``) and RADIUS endpoint open; ``overrides`` adds configuration."""
    made = _edge_files(folder, attestation_ca, monkeypatch, admin_token_env, overrides)
    async with running_gateway(made.files, database_url) as gateway:
        yield Edges(
            gateway,
            admin_url=f"http://127.0.0.1:{made.admin_port}",
            admin_token=made.admin_token,
            radius_url=f"http://127.0.0.1:{made.radius_port}",
            radius_token=made.radius_token,
        )
