"""The CRL publisher stops when asked, even when a nudge arrives at the same moment."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from acmegate.common.clock import SystemClock
from acmegate.signer.crl_publisher import CrlPublisher


async def test_stop_is_not_lost_to_a_concurrent_nudge() -> None:
    authority: Any = SimpleNamespace(config=SimpleNamespace(crl=SimpleNamespace(enabled=True)))
    publisher = CrlPublisher({"ca": authority}, None, SystemClock(), check_interval=3600)  # type: ignore[arg-type]
    rounds = 0

    async def publish_due() -> list[Any]:
        nonlocal rounds
        rounds += 1
        return []

    publisher.publish_due = publish_due  # type: ignore[method-assign]
    publisher.start()
    await asyncio.sleep(0.01)  # first round done, waiting for a nudge or the interval
    assert rounds == 1
    # A revocation nudges, and the service stops before the loop has seen the nudge: with
    # asyncio.wait_for (Python 3.11) the cancellation was swallowed and stop() waited forever.
    publisher.nudge()
    await asyncio.sleep(0)
    task = publisher._task
    assert task is not None
    stopping = asyncio.create_task(publisher.stop())
    done, _ = await asyncio.wait({stopping}, timeout=2)
    assert done == {stopping}, "stop() did not return"
    assert task.done() and rounds <= 2
