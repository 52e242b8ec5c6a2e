"""Requests waiting a short while for a pipeline result (finalize, challenge validation).

The replica that applies a result wakes its own waiters and broadcasts a ``WorkDone`` notice so
the replica holding the HTTP request (if another) wakes too. A missed wake-up only means the
client sees ``processing`` and polls (RFC 8555 §7.4, Retry-After): correctness never depends on it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class Waiters:
    _waiting: dict[str, list[asyncio.Future[None]]] = field(
        default_factory=lambda: defaultdict(list)
    )

    @contextlib.contextmanager
    def expect(self, key: str) -> Iterator[asyncio.Future[None]]:
        """Register before publishing, so a fast result cannot be missed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
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

    def wake(self, key: str) -> None:
        for future in self._waiting.get(key, ()):
            if not future.done():
                future.set_result(None)

    @staticmethod
    async def wait(future: asyncio.Future[None], seconds: float) -> bool:
        """True if woken within ``seconds``."""
        try:
            await asyncio.wait_for(asyncio.shield(future), seconds)
        except TimeoutError:
            return False
        return True
