"""The broker stopped for 60 s and PostgreSQL for 10 s under a closed-loop load, four services as
processes over private instances (issue #12): nothing lost, nothing issued twice, every order
within its budget, no 5xx but 503, and the time from the dependency's return to the first
completed enrollment (printed, and written to ACMEGATE_OUTAGE_REPORT)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from acmegate.common.bus.dead_letters import DeadLetters
from acmegate.testkit.apple_ca import AttestationCA
from tests.outage.load import Load, ledger, report, server_errors
from tests.support.gateway import GatewayFiles, create_database, distributed_gateway, gateway_config
from tests.support.private import PrivatePostgres, PrivateRabbit

pytestmark = [pytest.mark.outage, pytest.mark.slow, pytest.mark.timeout(300)]

BROKER_OUTAGE = 60.0
DATABASE_OUTAGE = 10.0
BUDGET = "150s"


@pytest.fixture
def files(tmp_path: Path, attestation_ca: AttestationCA) -> GatewayFiles:
    return gateway_config(
        tmp_path / "gateway",
        attestation_ca,
        overrides={
            "acme": {"processing_budget": BUDGET},
            "logging": {"level": "info", "json": True},
            # Every enrollment of the loop is a new account from 127.0.0.1.
            "rate_limits": {"new_accounts_per_ip": None, "new_orders_per_account": None},
        },
    )


def _library(line: str) -> bool:
    """A record of aiormq / aio-pika (they log each reconnect attempt; kept, as JSON)."""
    return '"logger": "aiormq' in line or '"logger": "aio_pika' in line


def assert_nothing_lost_nor_doubled(books: dict[str, object], load: Load) -> None:
    orders = books["orders"]
    assert isinstance(orders, dict)
    # Every order a device finalized ended valid within its budget (the sweeper fails one past
    # it with serverInternal, which would show as invalid); none is left processing.
    assert orders.get("processing", 0) == 0, books
    assert orders.get("invalid", 0) == 0, books
    assert books["issued"] == books["delivered"] == orders.get("valid", 0), books
    assert books["outbox"] == 0, books
    assert not load.errors, load.errors[:5]


async def test_a_sixty_second_broker_outage_under_load(
    files: GatewayFiles,
    attestation_ca: AttestationCA,
    private_postgres: PrivatePostgres,
    private_rabbit: PrivateRabbit,
) -> None:
    database_url = await create_database(private_postgres.url, "outage")
    load = Load(files, attestation_ca)
    async with distributed_gateway(files, database_url, private_rabbit.url) as services:
        load.start()
        await asyncio.sleep(5)
        before = len(load.completions)
        await asyncio.to_thread(private_rabbit.stop)
        await asyncio.sleep(BROKER_OUTAGE)
        await asyncio.to_thread(private_rabbit.start)
        back = time.monotonic()
        await load.completed_since(back, timeout=60)
        await asyncio.sleep(5)
        await load.stop()
        errors = server_errors(services["frontend"][0])
        tracebacks = [
            line
            for proc, _ in services.values()
            for line in proc.output
            if "Traceback" in line and not _library(line)
        ]
    async with DeadLetters(private_rabbit.url, "acmegate") as dead:
        dead_letters = {str(q): n for q, n in (await dead.counts()).items() if n}
    books = await ledger(database_url)
    figures = {
        "outage_seconds": BROKER_OUTAGE,
        "first_completion_after_return_s": round(load.first_completion_after(back), 2),
        "completed": len(load.completions),
        "completed_before_outage": before,
        "server_errors_by_status": errors,
        "dead_letters": dead_letters,
        "tracebacks": len(tracebacks),
        "refused": len(load.refused),
        "refused_examples": sorted(set(load.refused))[:3],
        **books,
    }
    report("broker", figures)
    assert_nothing_lost_nor_doubled(books, load)
    assert not dead_letters, dead_letters  # an outage never dead-letters
    assert not tracebacks, tracebacks[:1]  # one line per outage state change instead
    assert set(errors) <= {503}, errors
    assert figures["first_completion_after_return_s"] < 10, figures


async def test_a_ten_second_database_outage_under_load(
    files: GatewayFiles,
    attestation_ca: AttestationCA,
    private_postgres: PrivatePostgres,
    private_rabbit: PrivateRabbit,
) -> None:
    database_url = await create_database(private_postgres.url, "outage")
    load = Load(files, attestation_ca)
    async with distributed_gateway(files, database_url, private_rabbit.url) as services:
        load.start()
        await asyncio.sleep(5)
        before = len(load.completions)
        await asyncio.to_thread(private_postgres.stop)
        await asyncio.sleep(DATABASE_OUTAGE)
        await asyncio.to_thread(private_postgres.start)
        back = time.monotonic()
        await load.completed_since(back, timeout=60)
        await asyncio.sleep(5)
        await load.stop()
        errors = server_errors(services["frontend"][0])
        tracebacks = [
            line
            for proc, _ in services.values()
            for line in proc.output
            if "Traceback" in line and not _library(line)
        ]
    async with DeadLetters(private_rabbit.url, "acmegate") as dead:
        dead_letters = {str(q): n for q, n in (await dead.counts()).items() if n}
    books = await ledger(database_url)
    figures = {
        "outage_seconds": DATABASE_OUTAGE,
        "first_completion_after_return_s": round(load.first_completion_after(back), 2),
        "completed": len(load.completions),
        "completed_before_outage": before,
        "server_errors_by_status": errors,
        "dead_letters": dead_letters,
        "tracebacks": len(tracebacks),
        "refused": len(load.refused),
        "refused_examples": sorted(set(load.refused))[:3],
        **books,
    }
    report("database", figures)
    assert_nothing_lost_nor_doubled(books, load)
    assert not dead_letters, dead_letters  # an outage never dead-letters
    assert not tracebacks, tracebacks[:1]  # one line per outage state change instead
    assert set(errors) <= {503}, errors
    assert errors.get(503, 0) > 0, "the outage was not seen"
    assert figures["first_completion_after_return_s"] < 10, figures
