"""What the sweeper does shows in /metrics: late work republished, work past its budget failed
(and counted as a failed enrollment), and the outbox's backlog."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from acmegate.cli.compose import running
from acmegate.common.bus import InProcessBus
from acmegate.common.config import load_config
from acmegate.common.ids import b64url
from acmegate.testkit.acme_session import AcmeSession
from acmegate.testkit.apple_ca import AttestationCA
from tests.e2e.test_protocol import csr_der, ready_order
from tests.support.gateway import GatewayFiles, gateway_config
from tests.support.metrics import local


@pytest.fixture
def files(tmp_path: Path, attestation_ca: AttestationCA) -> GatewayFiles:
    return gateway_config(
        tmp_path / "gw",
        attestation_ca,
        overrides={
            "acme": {"sweep_interval": "1s", "republish_after": "1s", "processing_budget": "4s"},
            "server": {"finalize_wait": "1s", "challenge_wait": "1s"},
        },
    )


async def test_an_order_nobody_finishes_is_republished_then_failed_in_the_metrics(
    files: GatewayFiles, attestation_ca: AttestationCA, database_url: str
) -> None:
    failed = {"stage": "finalize", "outcome": "failed", "problem": "serverInternal"}
    before = {
        "failed": local("acmegate_enrollments_total", **failed),
        "republished": local("acmegate_sweeper_actions_total", action="republished"),
        "swept": local("acmegate_sweeper_actions_total", action="failed"),
    }
    backlog_seen = 0.0
    config = load_config(files.config_path)
    # No policy or signer: the order cannot finish.
    async with running(
        config, ["frontend", "attestation"], database=database_url, bus=InProcessBus()
    ) as state:
        sweeper = state.services["frontend"].sweeper  # type: ignore[attr-defined]
        async with AcmeSession(files.directory_url) as acme:
            await acme.new_account()
            order, order_url, key = await ready_order(acme, attestation_ca)
            await acme.post(order["finalize"], {"csr": b64url(csr_der(key, "C02E2E00001"))})
            for _ in range(100):
                await sweeper.sweep_once()
                backlog_seen = max(backlog_seen, local("acmegate_outbox_backlog"))
                if (await acme.post_as_get(order_url)).json_object()["status"] == "invalid":
                    break
                await asyncio.sleep(0.1)
            await sweeper.sweep_once()
    assert backlog_seen == 1
    assert local("acmegate_outbox_backlog") == 0
    assert local("acmegate_enrollments_total", **failed) - before["failed"] == 1
    assert local("acmegate_sweeper_actions_total", action="failed") - before["swept"] == 1
    assert local("acmegate_sweeper_actions_total", action="republished") > before["republished"]
