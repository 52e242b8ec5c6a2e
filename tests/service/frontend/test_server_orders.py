"""Server orders hold one authorization per identifier (RFC 8555 §7.1.4): the order is
ready once every one is valid — also when their results are applied at the same moment by
two replicas — and invalid as soon as one fails (§7.1.6)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from acmegate.cli.compose import migrate_database
from acmegate.common.db import create_pool
from acmegate.common.messages import Identifier, Problem, VerifyChallenge
from acmegate.common.vocabulary import ChallengeType
from acmegate.frontend.db import orders as order_db
from acmegate.frontend.db import work as work_db
from acmegate.frontend.db.gate import CHECKED
from acmegate.frontend.db.orders import NewAuthorization, NewChallenge, OrderLimits
from acmegate.frontend.status import OrderStatus

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
NAMES = ["a.example.test", "b.example.test", "c.example.test"]


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    await migrate_database(database_url, ["frontend"])
    pool = await create_pool(database_url, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


async def _server_order(pool: asyncpg.Pool, order_id: str) -> list[str]:
    """A pending order of NAMES; returns the http-01 challenge id of each authorization,
    already moved to ``processing``."""
    await pool.execute(
        "INSERT INTO acme.accounts (id, thumbprint, jwk) VALUES ('acct', 'acct', '{}') "
        "ON CONFLICT DO NOTHING"
    )
    identifiers = [Identifier("dns", name) for name in NAMES]
    authorizations = [
        NewAuthorization(
            f"{order_id}-{i}",
            identifier,
            [
                NewChallenge(f"{order_id}-{i}-http", ChallengeType.HTTP_01, f"t{i}h"),
                NewChallenge(f"{order_id}-{i}-dns", ChallengeType.DNS_01, f"t{i}d"),
            ],
        )
        for i, identifier in enumerate(identifiers)
    ]
    created = await order_db.create_order(
        pool,
        order_id=order_id,
        account_id="acct",
        identifiers=identifiers,
        enrollment_token=None,
        order_expires=NOW + timedelta(days=1),
        authorizations=authorizations,
        authz_expires=NOW + timedelta(days=1),
        limits=OrderLimits(None, None, NOW),
        gate=CHECKED,
    )
    assert created.created
    ids = [f"{order_id}-{i}-http" for i in range(len(NAMES))]
    for challenge_id in ids:
        fenced = await work_db.answer_challenge(
            pool,
            challenge_id,
            account_id="acct",
            head=work_db.message_head(VerifyChallenge, correlation_id="c", payload=b"{}"),
            queue="attestation.validate",
            times=work_db.OutboxTimes(
                now=NOW,
                deadline=NOW + timedelta(minutes=5),
                retry_at=NOW + timedelta(seconds=30),
            ),
            gate=CHECKED,
        )
        assert fenced.body is not None
    return ids


async def _status(pool: asyncpg.Pool, order_id: str) -> OrderStatus:
    order = await order_db.get_order(pool, order_id, CHECKED)
    assert order is not None
    return order.status


async def test_each_identifier_has_its_authorization_and_challenges(pool: asyncpg.Pool) -> None:
    await _server_order(pool, "o1")
    order = await order_db.get_order(pool, "o1", CHECKED)
    assert order is not None and len(order.authz_ids) == len(NAMES)
    authz = await order_db.get_authorization(pool, order.authz_ids[0], CHECKED)
    assert authz is not None
    assert [c.type for c in authz.challenges] == [ChallengeType.DNS_01, ChallengeType.HTTP_01]


async def test_results_applied_at_once_ready_the_order(pool: asyncpg.Pool) -> None:
    challenges = await _server_order(pool, "o2")
    applied = await asyncio.gather(
        *(
            work_db.apply_challenge_result(pool, c, claims=None, problem=None, now=NOW)
            for c in challenges
        )
    )
    assert applied == [True] * len(NAMES)
    assert await _status(pool, "o2") is OrderStatus.READY


async def test_the_order_waits_for_every_authorization(pool: asyncpg.Pool) -> None:
    first, *rest = await _server_order(pool, "o3")
    await work_db.apply_challenge_result(pool, first, claims=None, problem=None, now=NOW)
    assert await _status(pool, "o3") is OrderStatus.PENDING
    problem = Problem(kind="incorrectResponse", detail="wrong key authorization")
    await work_db.apply_challenge_result(pool, rest[0], claims=None, problem=problem, now=NOW)
    assert await _status(pool, "o3") is OrderStatus.INVALID
    # A late success changes nothing for the failed order.
    await work_db.apply_challenge_result(pool, rest[1], claims=None, problem=None, now=NOW)
    assert await _status(pool, "o3") is OrderStatus.INVALID
