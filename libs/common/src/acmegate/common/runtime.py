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
    pool: asyncpg.Pool
    bus: Bus
    clock: Clock = field(default_factory=SystemClock)


class Service(Protocol):
    """A service: it owns a schema (maybe), consumes its queues, and can be stopped."""

    name: str

    def migrations(self) -> list[SchemaMigrations]:
        """The schemas this service owns."""

    async def start(self) -> None:
        """Load what it needs once, then start consuming."""

    async def stop(self) -> None:
        """Stop consuming and release resources."""
