"""Requests waiting briefly for a pipeline result: woken by the replica that applied it (with
the outcome) or by another replica's notice (without), never missing a fast result, and
answering ``processing`` when nothing comes in time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from acmegate.common.errors import ErrorKind
from acmegate.common.messages import Problem
from acmegate.frontend.db.work import work_key
from acmegate.frontend.waiters import Outcome, Waiters, Woken

AT = datetime(2026, 3, 1, tzinfo=UTC)
KEY = work_key("order", "o1")
ISSUED = Outcome(valid=True, at=AT, certificate_id="cert-1")


def test_a_work_key_names_the_kind_and_the_subject() -> None:
    # The same string is the outbox row's id (db/work.py) and what the waiters wait on.
    assert work_key("challenge", "c1") == "challenge:c1"
    assert work_key("order", "o1") == "order:o1"


async def test_a_result_applied_here_wakes_the_request_with_its_outcome() -> None:
    waiters = Waiters()
    with waiters.expect(KEY) as done:
        waiting = asyncio.create_task(waiters.wait(done, 5))
        await asyncio.sleep(0)
        assert waiters.wake(KEY, ISSUED) is True
        assert await waiting == Woken(True, ISSUED)


async def test_another_replicas_notice_wakes_without_an_outcome() -> None:
    waiters = Waiters()
    with waiters.expect(KEY) as done:
        assert waiters.wake(KEY) is True
        # The request re-reads the row: the outcome was applied elsewhere.
        assert await waiters.wait(done, 5) == Woken(True, None)


async def test_a_result_faster_than_the_wait_is_not_missed() -> None:
    waiters = Waiters()
    failed = Outcome(valid=False, at=AT, error=Problem(ErrorKind.BAD_CSR, "no"))
    # Registered before publishing: the wake-up may come before the request waits.
    with waiters.expect(KEY) as done:
        waiters.wake(KEY, failed)
        assert await waiters.wait(done, 0.01) == Woken(True, failed)


async def test_nothing_in_time_means_processing() -> None:
    waiters = Waiters()
    with waiters.expect(KEY) as done:
        assert await waiters.wait(done, 0.01) == Woken(False)
        # A result after the wait ended harms nothing.
        assert waiters.wake(KEY, ISSUED) is True


async def test_every_waiter_on_a_key_wakes_and_only_those() -> None:
    waiters = Waiters()
    other = work_key("challenge", "o1")
    with waiters.expect(KEY) as first, waiters.expect(KEY) as second:
        with waiters.expect(other) as elsewhere:
            assert waiters.wake(KEY, ISSUED) is True
            assert await waiters.wait(first, 1) == Woken(True, ISSUED)
            assert await waiters.wait(second, 1) == Woken(True, ISSUED)
            assert await waiters.wait(elsewhere, 0.01) == Woken(False)


async def test_nobody_waits_once_the_request_left() -> None:
    waiters = Waiters()
    assert waiters.wake(KEY, ISSUED) is False
    with waiters.expect(KEY):
        pass
    # Whether anybody was woken decides the cross-replica broadcast (results.py).
    assert waiters.wake(KEY, ISSUED) is False
