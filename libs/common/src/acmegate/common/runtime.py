"""What every service is started with (configuration, database pool, bus and clock), and
what the composition root knows of a service before it starts it.

The composition root (``acmegate run`` / ``acmegate standalone``, ``acmegate.cli.compose``)
builds one :class:`Runtime` and hands it to each service; nothing in a service reaches for a
global: what tests must control (clock, pool, bus) is injected.
"""

from __future__ import annotations

from collections.abc import Callable
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

    async def start(self) -> None:
        """Load what it needs once, then start consuming."""

    async def stop(self) -> None:
        """Stop consuming and release resources."""


def no_migrations() -> list[SchemaMigrations]:
    """The migrations of a service that keeps no state: none."""
    return []


def no_problems(config: Config) -> list[str]:
    """The configuration checks of a service without checks of its own: none."""
    return []


@dataclass(frozen=True)
class ServiceSpec:
    """One service as the composition root sees it: how to build it, the schemas it owns
    (migrated before any service starts) and its own configuration checks."""

    name: str
    create: Callable[[Runtime], Service]
    migrations: Callable[[], list[SchemaMigrations]] = no_migrations
    validate: Callable[[Config], list[str]] = no_problems
