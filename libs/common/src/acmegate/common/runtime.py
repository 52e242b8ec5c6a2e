"""What every service is started with: configuration, database pool, bus and clock.

The composition root (``acmegate run`` / ``acmegate standalone``) builds one :class:`Runtime`
and hands it to each service; nothing in a service reaches for a global (STYLE.md §6).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import asyncpg

from acmegate.common.bus import Bus
from acmegate.common.clock import Clock, SystemClock
from acmegate.common.config import Config
from acmegate.common.migrations import SchemaMigrations


@dataclass
class Runtime:
    config: Config
    bus: Bus
    # None for services that keep no state (attestation): they run without a database.
    pool: asyncpg.Pool | None = None
    clock: Clock = field(default_factory=SystemClock)

    def require_pool(self) -> asyncpg.Pool:
        """The database pool of a service that owns state."""
        if self.pool is None:
            raise RuntimeError("this service needs a database (database.url)")
        return self.pool


class Service(Protocol):
    """A service: it owns a schema (maybe), consumes its queues, and can be stopped."""

    name: str

    def migrations(self) -> list[SchemaMigrations]:
        """The schemas this service owns."""

    async def start(self) -> None:
        """Load what it needs once, then start consuming."""

    async def stop(self) -> None:
        """Stop consuming and release resources."""
