"""Enrollment events are written by the statement that applies a result: one per finished
enrollment, none for a duplicate result, and no SQL round trip of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
import pytest

from acmegate.cli.compose import migrate_database
from acmegate.common.messages import DeviceClaims, EnrollmentRecord, Identifier, Problem
from acmegate.frontend.db import work as work_db
from acmegate.frontend.db.enrollments import recent_events

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
CLAIMS = DeviceClaims(
    provider="apple", format="apple", attested_key=b"spki", serial_number="C02EVENTS01"
)


class CountingPool:
    """The pool, counting the statements sent through it (each one a round trip)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.statements = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.pool, name)
        if name in ("fetch", "fetchval", "fetchrow", "execute", "executemany"):

            async def counted(*args: Any, **kwargs: Any) -> Any:
                self.statements += 1
                return await attribute(*args, **kwargs)

            return counted
        if name == "acquire":
            raise AssertionError("applying a result must not take a connection of its own")
        return attribute


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    await migrate_database(database_url, ["frontend"])
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


async def processing_order(
    pool: asyncpg.Pool, name: str, *, identifier: str, platform: str | None = None
) -> None:
    """An order whose challenge passed with CLAIMS and whose finalize is in the pipeline."""
    await pool.execute(
        "INSERT INTO acme.accounts (id, thumbprint, jwk) VALUES ($1, $1, '{}') "
        "ON CONFLICT DO NOTHING",
        "acct",
    )
    raw = msgspec.json.encode([{"type": "permanent-identifier", "value": identifier}]).decode()
    await pool.execute(
        "INSERT INTO acme.orders (id, account_id, status, expires, identifiers, platform, "
        "processing_at) VALUES ($1, 'acct', 'processing', $2, $3::jsonb, $4, $5)",
        name,
        NOW + timedelta(days=1),
        raw,
        platform,
        NOW,
    )
    await pool.execute(
        "INSERT INTO acme.authorizations (id, order_id, account_id, identifier, status, "
        "expires, claims) VALUES ($1, $1, 'acct', $2::jsonb, 'valid', $3, $4::jsonb)",
        name,
        msgspec.json.encode({"type": "permanent-identifier", "value": identifier}).decode(),
        NOW + timedelta(days=1),
        msgspec.json.encode(CLAIMS).decode(),
    )


async def pending_challenge(pool: asyncpg.Pool, name: str, identifier: str) -> None:
    await processing_order(pool, name, identifier=identifier)
    await pool.execute("UPDATE acme.orders SET status = 'pending' WHERE id = $1", name)
    await pool.execute(
        "UPDATE acme.authorizations SET status = 'pending', claims = NULL WHERE id = $1", name
    )
    await pool.execute(
        "INSERT INTO acme.challenges (id, authz_id, account_id, type, token, status) "
        "VALUES ($1, $1, 'acct', 'device-attest-01', 'tok', 'processing')",
        name,
    )


async def test_an_issued_order_writes_one_completed_event_in_the_same_statement(
    pool: asyncpg.Pool,
) -> None:
    await processing_order(pool, "o1", identifier="C02EVENTS01")
    counting = CountingPool(pool)
    record = EnrollmentRecord(
        identifier=Identifier("permanent-identifier", "C02EVENTS01"),
        device=CLAIMS,
        signal_source="inventory",
        enrollment_policy="managed-apple-devices",
    )
    applied = await work_db.apply_order_result(
        counting,  # type: ignore[arg-type]
        "o1",
        certificate_id="c1",
        serial="abc123",
        chain_pem="PEM",
        problem=None,
        now=NOW,
        record=record,
        template="device",
    )
    assert applied and counting.statements == 1
    # A duplicate result changes nothing, and records nothing.
    assert not await work_db.apply_order_result(
        pool, "o1", certificate_id="c2", serial="abc123", chain_pem="PEM", problem=None, now=NOW
    )
    [event] = await recent_events(pool)
    assert (event.outcome, event.stage, event.order_id) == ("completed", "order", "o1")
    assert event.certificate_serial == "abc123" and event.device_serial == "C02EVENTS01"
    assert event.identifier == "C02EVENTS01" and event.at == NOW
    assert event.enrollment_policy == "managed-apple-devices"
    assert event.certificate_template == "device" and event.signal_source == "inventory"
    assert event.problem is None and event.reason is None


async def test_a_refused_order_writes_one_failed_event_with_its_reason(
    pool: asyncpg.Pool,
) -> None:
    await processing_order(pool, "o2", identifier="agt-secret-token", platform="jamf-macs")
    counting = CountingPool(pool)
    problem = Problem(kind="rejectedIdentifier", detail="device C02EVENTS01 is not managed")
    assert await work_db.apply_order_result(
        counting,  # type: ignore[arg-type]
        "o2",
        certificate_id="c3",
        serial=None,
        chain_pem=None,
        problem=problem,
        now=NOW,
    )
    assert counting.statements == 1
    [event] = await recent_events(pool, outcome="failed")
    assert event.outcome == "failed" and event.reason == "device C02EVENTS01 is not managed"
    assert event.problem is not None and event.problem.kind == "rejectedIdentifier"
    # Without a record the serial comes from the attestation claims; a token is not copied.
    assert event.device_serial == "C02EVENTS01" and event.platform == "jamf-macs"
    assert event.identifier is None and event.certificate_serial is None
    assert await recent_events(pool, outcome="completed") == []


async def test_a_failed_challenge_writes_one_event_and_a_valid_one_none(
    pool: asyncpg.Pool,
) -> None:
    await pending_challenge(pool, "ch1", "C02EVENTS02")
    await pending_challenge(pool, "ch2", "C02EVENTS03")
    counting = CountingPool(pool)
    problem = Problem(kind="badAttestationStatement", detail="the chain is not Apple's")
    assert await work_db.apply_challenge_result(
        counting,  # type: ignore[arg-type]
        "ch1",
        claims=None,
        problem=problem,
        now=NOW,
    )
    assert counting.statements == 1
    assert not await work_db.apply_challenge_result(
        pool, "ch1", claims=None, problem=problem, now=NOW
    )
    assert await work_db.apply_challenge_result(pool, "ch2", claims=CLAIMS, problem=None, now=NOW)
    [event] = await recent_events(pool)
    assert (event.outcome, event.stage, event.order_id) == ("failed", "challenge", "ch1")
    assert event.reason == "the chain is not Apple's" and event.identifier == "C02EVENTS02"
