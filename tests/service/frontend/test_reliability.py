"""No challenge or order is lost or stays `processing` forever (docs/design.md "Results and the
sweeper")."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from acmegate.cli.compose import migrate_database, running, service_spec
from acmegate.common.bus import InProcessBus, Queue, codec
from acmegate.common.config import load_config
from acmegate.common.ids import b64url
from acmegate.testkit.acme_session import AcmeSession
from acmegate.testkit.apple_ca import AttestationCA
from tests.e2e.test_protocol import csr_der, ready_order
from tests.support.gateway import GatewayFiles, gateway_config
from tests.support.metrics import local


@dataclass
class LossyBus(InProcessBus):
    """Loses the first message published to ``lose`` (a broker that fails to confirm)."""

    lose: set[Queue] = field(default_factory=set)

    async def publish(self, queue: Queue, message: codec.Message) -> None:
        if queue in self.lose:
            self.lose.discard(queue)
            raise ConnectionError("broker unavailable")
        await super().publish(queue, message)


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


async def test_a_finalize_whose_publish_failed_is_published_again_and_completes(
    files: GatewayFiles, attestation_ca: AttestationCA, database_url: str
) -> None:
    config = load_config(files.config_path)
    bus = LossyBus(lose={Queue.FINALIZE_ATTESTATION})
    names = ["frontend", "attestation", "policy", "signer"]
    async with running(config, names, database=database_url, bus=bus) as state:
        async with AcmeSession(files.directory_url) as acme:
            await acme.new_account()
            order, order_url, key = await ready_order(acme, attestation_ca)
            answered = await acme.post(
                order["finalize"], {"csr": b64url(csr_der(key, "C02E2E00001"))}
            )
            assert answered.json_object()["status"] == "processing"
            final = await acme.poll(order_url, max_seconds=15)
            assert final.json_object()["status"] == "valid"
        pool = state.runtime.require_pool()
        assert await pool.fetchval("SELECT count(*) FROM pki.certificates") == 1
        assert await pool.fetchval("SELECT count(*) FROM acme.outbox") == 0


async def test_an_order_nobody_finishes_fails_after_its_budget_and_a_late_certificate_is_revoked(
    files: GatewayFiles, attestation_ca: AttestationCA, database_url: str
) -> None:
    config = load_config(files.config_path)
    bus = InProcessBus()
    # The policy and signer stages are missing: the order cannot finish.
    async with running(
        config, ["frontend", "attestation"], database=database_url, bus=bus
    ) as state:
        pool = state.runtime.require_pool()
        async with AcmeSession(files.directory_url) as acme:
            await acme.new_account()
            order, order_url, key = await ready_order(acme, attestation_ca)
            await acme.post(order["finalize"], {"csr": b64url(csr_der(key, "C02E2E00001"))})
            final = await acme.poll(order_url, max_seconds=20)
        body = final.json_object()
        assert body["status"] == "invalid"
        assert body["error"]["type"] == "urn:ietf:params:acme:error:serverInternal"
        assert await pool.fetchval("SELECT count(*) FROM acme.outbox") == 0

        # The stages come back and work through what waited for them: the certificate that
        # the signer now issues reached no one, so it is revoked.
        await migrate_database(database_url, ["policy", "signer"])
        late = [service_spec(name).create(state.runtime) for name in ("policy", "signer")]
        for service in late:
            await service.start()
        try:
            for _ in range(100):
                status = await pool.fetchval("SELECT status FROM pki.certificates")
                if status == "revoked":
                    break
                await asyncio.sleep(0.1)
            assert status == "revoked"
            reason = await pool.fetchval("SELECT revocation_reason FROM pki.certificates")
            assert reason == "superseded"
        finally:
            for service in late:
                await service.stop()


async def test_a_challenge_nobody_validates_fails_after_its_budget(
    files: GatewayFiles, database_url: str
) -> None:
    config = load_config(files.config_path)
    # No attestation service: the challenge cannot be validated.
    async with running(config, ["frontend"], database=database_url, bus=InProcessBus()) as state:
        async with AcmeSession(files.directory_url) as acme:
            await acme.new_account()
            order = (
                await acme.post(
                    await acme.url_of("newOrder"),
                    {"identifiers": [{"type": "permanent-identifier", "value": "C02E2E00001"}]},
                )
            ).json_object()
            authz_url = order["authorizations"][0]
            challenge = (await acme.post_as_get(authz_url)).json_object()["challenges"][0]
            answered = (await acme.post(challenge["url"], {"attObj": "AAAA"})).json_object()
            assert answered["status"] == "processing"
            final = await acme.poll(authz_url, max_seconds=20)
        body = final.json_object()
        assert body["status"] == "invalid"
        assert body["challenges"][0]["error"]["type"] == (
            "urn:ietf:params:acme:error:serverInternal"
        )
        pool = state.runtime.require_pool()
        assert await pool.fetchval("SELECT count(*) FROM acme.outbox") == 0


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
