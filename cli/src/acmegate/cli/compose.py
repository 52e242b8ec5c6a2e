"""The composition root: builds the runtime and the services the command asked for.

This is the only place that imports every service (DESIGN.md: services import only
``acmegate.common`` and themselves).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import asyncpg
import structlog

from acmegate.common.bus import Bus, bus_from_config
from acmegate.common.config import Config, seconds
from acmegate.common.db import create_pool, database_url
from acmegate.common.migrations import SchemaMigrations, migrate
from acmegate.common.runtime import Runtime, Service

log = structlog.get_logger(__name__)

SERVICE_NAMES = ("frontend", "attestation", "policy", "signer")
# Services that keep state in PostgreSQL (attestation runs without a database).
STATEFUL = {"frontend", "policy", "signer"}


def service_factory(name: str) -> Callable[[Runtime], Service]:
    if name == "frontend":
        from acmegate.frontend.service import FrontendService

        return FrontendService
    if name == "attestation":
        from acmegate.attestation.service import AttestationService

        return AttestationService
    if name == "policy":
        from acmegate.policy.service import PolicyService

        return PolicyService
    if name == "signer":
        from acmegate.signer.service import SignerService

        return SignerService
    raise ValueError(f"unknown service {name!r}; choose from {', '.join(SERVICE_NAMES)}")


async def serve_requests(name: str, runtime: Runtime, service: Service) -> None:
    """Start answering the admin API's requests for a started service (request/reply)."""
    if name == "signer":
        from acmegate.signer import rpc as signer_rpc
        from acmegate.signer.service import SignerService

        if isinstance(service, SignerService):
            await signer_rpc.serve(runtime, service)
    elif name == "policy":
        from acmegate.policy import rpc as policy_rpc
        from acmegate.policy.service import PolicyService

        if isinstance(service, PolicyService):
            await policy_rpc.serve(runtime, service)


def schema_migrations(names: Sequence[str]) -> list[SchemaMigrations]:
    """The migrations of the schemas the named services own."""
    found: list[SchemaMigrations] = []
    if "frontend" in names:
        from acmegate.frontend.service import migrations as frontend_migrations

        found += frontend_migrations()
    if "policy" in names:
        from acmegate.policy.service import migrations as policy_migrations

        found += policy_migrations()
    if "signer" in names:
        from acmegate.signer.service import migrations as signer_migrations

        found += signer_migrations()
    return found


def validate(config: Config, names: Sequence[str]) -> list[str]:
    """Every service's own configuration checks (beyond the shared schema)."""
    problems: list[str] = []
    if "attestation" in names:
        from acmegate.attestation.service import validate_config as attestation_validate

        problems += attestation_validate(config)
    if "policy" in names:
        from acmegate.policy.validation import validate_config as policy_validate

        problems += policy_validate(config)
    if "signer" in names:
        from acmegate.signer.authorities import validate_config as signer_validate

        problems += signer_validate(config)
    return problems


async def migrate_database(url: str, names: Sequence[str]) -> list[str]:
    connection = await asyncpg.connect(url)
    try:
        return await migrate(connection, *schema_migrations(names))
    finally:
        await connection.close()


@dataclass
class Running:
    runtime: Runtime
    services: dict[str, Service] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def running(
    config: Config,
    names: Sequence[str],
    *,
    database: str | None,
    bus: Bus | None = None,
    in_process: bool = False,
) -> AsyncIterator[Running]:
    """Start the named services on one runtime; stop them (in reverse) on exit."""
    needs_db = bool(STATEFUL.intersection(names))
    pool: asyncpg.Pool | None = None
    if needs_db:
        if not database:
            raise ValueError("database.url (or ACMEGATE_DATABASE_URL) is required")
        await migrate_database(database, names)
        pool = await create_pool(
            database,
            min_size=config.database.pool_min,
            max_size=config.database.pool_max,
            statement_timeout=seconds(config.database.statement_timeout),
        )
    the_bus = bus if bus is not None else bus_from_config(config, in_process=in_process)
    await the_bus.start()
    runtime = Runtime(config=config, bus=the_bus, pool=pool)
    state = Running(runtime)
    try:
        # Consumers first, the HTTP edge last: nothing is accepted before it can be processed.
        for name in sorted(names, key=lambda n: n == "frontend"):
            service = service_factory(name)(runtime)
            await service.start()
            state.services[name] = service
            await serve_requests(name, runtime, service)
        yield state
    finally:
        for service in reversed(list(state.services.values())):
            await service.stop()
        await the_bus.close()
        if pool is not None:
            await pool.close()


async def wait_for_signal() -> None:
    """Until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def resolve_database(config: Config) -> str | None:
    return database_url(config)
