"""Group commit: many concurrent writers of one statement share one round trip.

Each caller of :meth:`GroupCommit.write` returns only once its own parameters were executed
and committed, so nothing is weaker than one statement per caller; but the writers that
arrive while a flush is being prepared go out together through asyncpg's ``executemany``
(one pipelined, atomic batch). Under load that turns N round trips into about one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg


@dataclass
class GroupCommit:
    pool: asyncpg.Pool
    sql: str
    max_batch: int = 256
    _pending: list[tuple[Sequence[object], asyncio.Future[None]]] = field(default_factory=list)
    _flushing: bool = False

    async def write(self, *args: object) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((args, future))
        if not self._flushing:
            self._flushing = True
            # Let the writers that are already runnable join this batch first.
            asyncio.get_running_loop().call_soon(self._start)
        await future

    def _start(self) -> None:
        asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                try:
                    await self.pool.executemany(self.sql, [args for args, _ in batch])
                except Exception as exc:  # noqa: BLE001 - handed to every writer below
                    # All or nothing (executemany is atomic): every writer of the batch sees it.
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for _, future in batch:
                        if not future.done():
                            future.set_result(None)
        finally:
            self._flushing = False
