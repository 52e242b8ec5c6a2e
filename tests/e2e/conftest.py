"""End-to-end fixtures: a whole gateway on real PostgreSQL, in-process or over RabbitMQ."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from acmegate.testkit.apple_ca import AttestationCA
from tests.support.gateway import Gateway, GatewayFiles, gateway_config, running_gateway


@pytest.fixture
def gateway_files(tmp_path: Path, attestation_ca: AttestationCA) -> GatewayFiles:
    return gateway_config(tmp_path / "gateway", attestation_ca)


@pytest.fixture
async def gateway(gateway_files: GatewayFiles, database_url: str) -> AsyncIterator[Gateway]:
    """All four services in one process on the in-process bus (as `acmegate standalone`)."""
    async with running_gateway(gateway_files, database_url) as running:
        yield running
