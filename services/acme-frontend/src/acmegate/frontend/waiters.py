"""Requests waiting a short while for a pipeline result (finalize, challenge validation).

The replica that applies a result wakes its own waiters and broadcasts a ``WorkDone`` notice so
the replica holding the HTTP request (if another) wakes too. A missed wake-up only means the
client sees ``processing`` and polls (RFC 8555 §7.4, Retry-After): correctness never depends on it.

The replica that applied the result also hands its waiters the :class:`Outcome`, so the request
it wakes can answer without reading the row back; a wake-up from another replica's notice
carries none, and the request re-reads.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from acmegate.common.messages import Problem


@dataclass(frozen=True, slots=True)
class Outcome:
    """The state a result moved a challenge or an order to: ``valid`` (the challenge, its
    authorization and order; or the order with its certificate) or ``invalid`` with ``error``."""

    valid: bool
    at: datetime
    error: Problem | None = None
    certificate_id: str | None = None


@dataclass(frozen=True, slots=True)
class Woken:
    """How a wait ended: ``woken`` in time, with the outcome if this replica applied it."""

    woken: bool
    outcome: Outcome | None = None


@dataclass
class Waiters:
    """This replica's requests waiting for results, by work key (``db.work.work_key``)."""

    _waiting: dict[str, list[asyncio.Future[Outcome | None]]] = field(
        default_factory=lambda: defaultdict(list)
    )

    @contextlib.contextmanager
    def expect(self, key: str) -> Iterator[asyncio.Future[Outcome | None]]:
        """Register before publishing, so a fast result cannot be missed."""
        future: asyncio.Future[Outcome | None] = asyncio.get_running_loop().create_future()
        self._waiting[key].append(future)
        try:
            yield future
        finally:
            waiting = self._waiting.get(key)
            if waiting is not None:
                with contextlib.suppress(ValueError):
                    waiting.remove(future)
                if not waiting:
                    del self._waiting[key]

    def wake(self, key: str, outcome: Outcome | None = None) -> bool:
        """Wake this replica's waiters on ``key``; whether there were any."""
        woken = False
        for future in self._waiting.get(key, ()):
            if not future.done():
                future.set_result(outcome)
                woken = True
        return woken

    @staticmethod
    async def wait(future: asyncio.Future[Outcome | None], seconds: float) -> Woken:
        """Wait up to ``seconds`` for ``future`` (from :meth:`expect`) to be woken."""
        try:
            outcome = await asyncio.wait_for(asyncio.shield(future), seconds)
        except TimeoutError:
            return Woken(False)
        return Woken(True, outcome)
