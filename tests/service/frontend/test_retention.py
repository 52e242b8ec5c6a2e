"""Retention (issue #8): finished ACME records are purged after their periods, in bounded
batches, by the sweeper; nothing a valid certificate or an in-flight order needs is touched.
The clock is controlled: each purge is asked "as of" a chosen time."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from acmegate.cli.compose import running
from acmegate.common import messages
from acmegate.common.bus import InProcessBus, Queue
from acmegate.common.clock import FixedClock
from acmegate.common.config import load_config
from acmegate.common.ids import b64url
from acmegate.frontend.retention import Purged
from acmegate.frontend.service import FrontendService
from acmegate.policy.service import PolicyService
from acmegate.testkit.acme_session import AcmeSession
from acmegate.testkit.apple_ca import AttestationCA, LeafClaims
from acmegate.testkit.device import DeviceMode, EnrollmentResult, SimulatedDevice
from tests.e2e.test_protocol import csr_der, ready_order
from tests.support.gateway import GatewayFiles, gateway_config

pytestmark = pytest.mark.e2e


@dataclass
class HoldingBus(InProcessBus):
    """Accepts but never delivers messages to the queues in ``hold`` (a stage that is down)."""

    hold: set[Queue] = field(default_factory=set)

    async def publish(self, queue: Queue, message: messages.Message) -> None:
        if queue in self.hold:
            return
        await super().publish(queue, message)


@pytest.fixture
def files(tmp_path: Path, attestation_ca: AttestationCA) -> GatewayFiles:
    return gateway_config(
        tmp_path / "gw",
        attestation_ca,
        overrides={
            "server": {"finalize_wait": "1s", "challenge_wait": "5s"},
            "acme": {"sweep_interval": "1s", "republish_after": "1s", "processing_budget": "1h"},
            "retention": {
                "orders": "1d",
                "accounts": "1d",
                "certificates": "1d",
                "enrollment_events": "7d",
                "lookups": "7d",
                # One row per statement: every purge below takes several batches.
                "batch": 1,
                # The sweeper's own passes stay out of the way of the controlled ones.
                "interval": "1y",
            },
        },
    )


async def failed_enrollment(
    files: GatewayFiles, attestation_ca: AttestationCA, serial: str
) -> EnrollmentResult:
    """An enrollment whose challenge fails (the attestation answers another token)."""
    device = SimulatedDevice(
        files.directory_url,
        serial,
        LeafClaims.macos(serial),
        attestation_ca,
        mode=DeviceMode.WRONG_TOKEN_HASH,
    )
    try:
        return await device.enroll()
    finally:
        await device.close()


async def counts(pool: asyncpg.Pool) -> dict[str, int]:
    tables = (
        "acme.accounts",
        "acme.orders",
        "acme.authorizations",
        "acme.challenges",
        "acme.certificates",
        "acme.enrollment_events",
        "policy.lookups",
    )
    return {t.split(".")[1]: await pool.fetchval(f"SELECT count(*) FROM {t}") for t in tables}


async def test_finished_records_go_after_their_periods_and_nothing_in_use_does(
    files: GatewayFiles, attestation_ca: AttestationCA, database_url: str
) -> None:
    config = load_config(files.config_path)
    bus = HoldingBus()
    names = ["frontend", "attestation", "policy", "signer"]
    async with running(config, names, database=database_url, bus=bus) as state:
        pool = state.runtime.require_pool()
        frontend = state.services["frontend"]
        policy = state.services["policy"]
        assert isinstance(frontend, FrontendService) and isinstance(policy, PolicyService)
        retention = frontend.sweeper.retention
        assert retention is not None and policy.retention is not None
        now = datetime.now(UTC)

        # An issued certificate, a failed challenge, an account alone, a pending order.
        device = SimulatedDevice(
            files.directory_url, "C02E2E00001", LeafClaims.macos("C02E2E00001"), attestation_ca
        )
        issued = await device.enroll()
        assert issued.ok and issued.certificate is not None
        certificate_not_after = issued.certificate.not_valid_after_utc
        failed = await failed_enrollment(files, attestation_ca, "C02E2E00002")
        assert failed.problem is not None
        async with AcmeSession(files.directory_url) as alone:
            await alone.new_account()
        async with AcmeSession(files.directory_url) as pending:
            await pending.new_account()
            await pending.post(
                await pending.url_of("newOrder"),
                {"identifiers": [{"type": "permanent-identifier", "value": "DMQE2EPHONE"}]},
            )
        # An order in flight: its finalize waits for a policy stage that does not answer.
        bus.hold.add(Queue.FINALIZE_POLICY)
        inflight = AcmeSession(files.directory_url)
        await inflight.new_account()
        order, order_url, key = await ready_order(inflight, attestation_ca, "C02E2E00002")
        answered = await inflight.post(
            order["finalize"], {"csr": b64url(csr_der(key, "C02E2E00002"))}
        )
        assert answered.json_object()["status"] == "processing"

        before = await counts(pool)
        assert before == {
            "accounts": 5,
            "orders": 4,
            "authorizations": 4,
            "challenges": 4,
            "certificates": 1,
            "enrollment_events": 2,
            "lookups": 1,
        }

        # Within every period nothing goes but the rate-limit rows whose budget is full
        # again (the new accounts of 127.0.0.1, four accounts' new orders, one device's
        # failed validation).
        assert await retention.purge(now + timedelta(hours=1)) == Purged(rate_limits=6)
        assert await policy.retention.purge(now + timedelta(hours=1)) == 0

        # Two days after the orders expired (1 d lifetime + 1 d retention + a margin): the
        # failed and the abandoned order go with their authorizations and challenges, and
        # the accounts left without orders; the issued certificate's order and account stay,
        # and so does the order in flight (it expired, but its outbox row is alive).
        purged = await retention.purge(now + timedelta(days=3))
        assert purged == Purged(orders=2, accounts=3)
        assert await counts(pool) == {
            **before,
            "accounts": 2,
            "orders": 2,
            "authorizations": 2,
            "challenges": 2,
        }
        # The certificate is still downloadable by its account.
        assert issued.certificate_url is not None
        async with AcmeSession(
            files.directory_url, device.account, account_url=issued.account_url
        ) as holder:
            download = await holder.post_as_get(issued.certificate_url)
            assert download.status == 200
        assert await pool.fetchval("SELECT not_after FROM acme.certificates") == (
            certificate_not_after
        )

        # A day after the certificate expired its chain goes, then its order and account;
        # the enrollment events (7 d) and lookups (7 d) go too. The order in flight stays.
        later = certificate_not_after + timedelta(days=8)
        purged = await retention.purge(later)
        assert purged == Purged(certificates=1, orders=1, accounts=1, enrollment_events=2)
        assert await policy.retention.purge(later) == 1
        assert await counts(pool) == {
            "accounts": 1,
            "orders": 1,
            "authorizations": 1,
            "challenges": 1,
            "certificates": 0,
            "enrollment_events": 0,
            "lookups": 0,
        }

        # The order in flight completes once the policy stage answers again.
        bus.hold.clear()
        final = await inflight.poll(order_url, max_seconds=20)
        assert final.json_object()["status"] == "valid"
        await inflight.close()
        await device.close()


async def test_the_sweeper_purges_on_its_own_and_spent_rate_limit_rows_go(
    tmp_path: Path, attestation_ca: AttestationCA, database_url: str
) -> None:
    files = gateway_config(
        tmp_path / "gw",
        attestation_ca,
        overrides={"acme": {"sweep_interval": "1s"}, "retention": {"interval": "1d"}},
    )
    config = load_config(files.config_path)
    names = ["frontend", "attestation", "policy", "signer"]
    async with running(config, names, database=database_url, bus=InProcessBus()) as state:
        pool = state.runtime.require_pool()
        frontend = state.services["frontend"]
        assert isinstance(frontend, FrontendService)
        failed = await failed_enrollment(files, attestation_ca, "C02E2E00001")
        assert failed.problem is not None
        # newAccount, newOrder and the failed validation each left a rate-limit row.
        assert await pool.fetchval("SELECT count(*) FROM acme.rate_limits") == 3
        # The sweeper purges every retention.interval (1 d here), on its own clock: two months
        # on, the default periods (30 d) have passed.
        frontend.frontend.clock = FixedClock(datetime.now(UTC) + timedelta(days=61))
        await frontend.sweeper.sweep_once()
        assert await pool.fetchval("SELECT count(*) FROM acme.orders") == 0
        assert await pool.fetchval("SELECT count(*) FROM acme.accounts") == 0
        assert await pool.fetchval("SELECT count(*) FROM acme.rate_limits") == 0
