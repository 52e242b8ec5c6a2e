"""A whole gateway with every public edge open: ACME, the admin listener and RADIUS.

Hostile-input tests and the property-based fuzz test send what no honest client sends to each
of them and assert on what a client would see: a 4xx in the edge's documented error format,
never a 5xx.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from acmegate.testkit.apple_ca import AttestationCA
from tests.support.edges import Edges, running_edges

ADMIN_TOKEN_ENV = "ACMEGATE_TEST_FUZZ_ADMIN_TOKEN"

__all__ = ["ADMIN_TOKEN_ENV", "Edges", "edges"]


@pytest.fixture
async def edges(
    tmp_path: Path,
    attestation_ca: AttestationCA,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Edges]:
    async with running_edges(
        tmp_path / "gateway",
        attestation_ca,
        database_url,
        monkeypatch,
        admin_token_env=ADMIN_TOKEN_ENV,
        overrides={
            # The fuzzing sends wrong tokens on purpose; with the failed-login throttle on,
            # the right token would soon get 429 too and the operations would go unreached.
            "rate_limits": {"failed_admin_logins_per_ip": None},
            "device_management_platforms": [
                {"name": "jamf-macs", "profile": {"subject": "CN=$SERIALNUMBER"}}
            ],
        },
    ) as found:
        yield found
