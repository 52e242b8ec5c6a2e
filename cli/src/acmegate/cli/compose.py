"""The composition root: builds the runtime and the services the command asked for.

This is the only place that imports every service (services import only ``acmegate.common``
and themselves; the import-linter contracts in ``pyproject.toml`` hold them to it). Each
service describes itself with a :class:`~acmegate.common.runtime.ServiceSpec` (``SPEC`` in its
``service`` module); the one table below finds it, importing a service only when it is named.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import re
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import asyncpg
import structlog

from acmegate.common.bus import AmqpBus, Bus, bus_from_config
from acmegate.common.config import Config, ConfigError, seconds
from acmegate.common.db import database_url, pool_from_config
from acmegate.common.migrations import SchemaMigrations, migrate
from acmegate.common.runtime import Runtime, Service, ServiceSpec
from acmegate.common.startup import (
    StartupError,
    broker_problem,
    database_problem,
    retrying,
    where,
)

log = structlog.get_logger(__name__)


def _frontend() -> ServiceSpec:
    from acmegate.frontend.service import SPEC

    return SPEC


def _attestation() -> ServiceSpec:
    from acmegate.attestation.service import SPEC

    return SPEC


def _policy() -> ServiceSpec:
    from acmegate.policy.service import SPEC

    return SPEC


def _signer() -> ServiceSpec:
    from acmegate.signer.service import SPEC

    return SPEC


# Every service by name: the one table the commands and the start-up go through.
_SPECS: dict[str, Callable[[], ServiceSpec]] = {
    "frontend": _frontend,
    "attestation": _attestation,
    "policy": _policy,
    "signer": _signer,
}
SERVICE_NAMES = tuple(_SPECS)


def service_spec(name: str) -> ServiceSpec:
    """The spec of the service called ``name``; ``ValueError`` for an unknown name."""
    load = _SPECS.get(name)
    if load is None:
        raise ValueError(f"unknown service {name!r}; choose from {', '.join(SERVICE_NAMES)}")
    return load()


def _specs(names: Sequence[str]) -> list[ServiceSpec]:
    """The named services' specs, in the table's order."""
    for name in names:
        service_spec(name)  # refuses an unknown name
    return [service_spec(name) for name in SERVICE_NAMES if name in names]


def schema_migrations(names: Sequence[str]) -> list[SchemaMigrations]:
    """The migrations of the schemas the named services own."""
    return [schema for spec in _specs(names) for schema in spec.migrations()]


def validate(config: Config, names: Sequence[str]) -> list[str]:
    """Every service's own configuration checks (beyond the shared schema)."""
    return [problem for spec in _specs(names) for problem in spec.validate(config)]


async def migrate_database(url: str, names: Sequence[str]) -> list[str]:
    """Apply the named services' missing migrations; the names of the files applied."""
    return await _migrate(url, schema_migrations(names))


async def _migrate(url: str, schemas: Sequence[SchemaMigrations]) -> list[str]:
    connection = await asyncpg.connect(url)
    try:
        return await migrate(connection, *schemas)
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
    """Start the named services on one runtime; stop them (in reverse) on exit.

    An unreachable PostgreSQL or RabbitMQ is retried for ``startup.retry_for`` (then
    :class:`~acmegate.common.startup.DependencyUnavailable`); a listener whose address is
    taken is a :class:`StartupError` naming the configuration key; a missing database URL is
    a :class:`ConfigError`.
    """
    # Consumers first, the HTTP edge last: nothing is accepted before it can be processed.
    specs = [service_spec(name) for name in sorted(names, key=lambda n: n == "frontend")]
    schemas = schema_migrations(names)
    retry_for = float(seconds(config.startup.retry_for))
    async with contextlib.AsyncExitStack() as cleanup:
        pool: asyncpg.Pool | None = None
        # Services that own a schema keep state in PostgreSQL (attestation runs without one).
        if schemas:
            if not database:
                needing = ", ".join(spec.name for spec in specs if spec.migrations())
                raise ConfigError(
                    f"database.url (or ACMEGATE_DATABASE_URL) is required by {needing} "
                    "(state is kept in PostgreSQL)"
                )
            url = database
            target = f"PostgreSQL at {where(url)}"
            await retrying(
                target,
                lambda: _migrate(url, schemas),
                problem=database_problem,
                retry_for=retry_for,
            )
            pool = await retrying(
                target,
                lambda: pool_from_config(config, url),
                problem=database_problem,
                retry_for=retry_for,
            )
            cleanup.push_async_callback(pool.close)
        the_bus = bus if bus is not None else bus_from_config(config, in_process=in_process)
        await retrying(
            f"RabbitMQ at {where(the_bus.url)}" if isinstance(the_bus, AmqpBus) else "the bus",
            the_bus.start,
            problem=broker_problem,
            retry_for=retry_for,
        )
        cleanup.push_async_callback(the_bus.close)
        runtime = Runtime(config=config, bus=the_bus, pool=pool)
        state = Running(runtime)
        try:
            for spec in specs:
                service = spec.create(runtime)
                try:
                    await service.start()
                except OSError as exc:
                    raise listener_error(config, spec.name, exc) from exc
                state.services[spec.name] = service
            yield state
        finally:
            for service in reversed(list(state.services.values())):
                await service.stop()


def _listener_ports(config: Config) -> list[tuple[str, int]]:
    """The configuration key of each listener's port, to name it when its address is taken."""
    ports = [("server.port", config.server.port), ("health.port", config.health.port)]
    if config.admin.enabled:
        ports.append(("admin.port", config.admin.port))
    if config.pki is not None and config.pki.listen:
        ports.append(("pki.port", config.pki.port))
    if config.radius.enabled:
        ports.append(("radius.port", config.radius.port))
    return ports


_LISTEN_ERRORS = {
    errno.EADDRINUSE: "is already in use (another gateway or program listens there)",
    errno.EACCES: "may not be opened by this user (ports below 1024 need privileges)",
    errno.EADDRNOTAVAIL: "is not an address of this machine",
}


def listener_error(config: Config, service: str, exc: OSError) -> Exception:
    """One clear line for a listener that cannot bind; other errors are returned unchanged."""
    what = _LISTEN_ERRORS.get(exc.errno or 0)
    if what is None:
        return exc
    # uvloop and asyncio both say "... on address ('127.0.0.1', 8443): ...".
    found = re.search(r"\('?([^',]*)'?, (\d+)\)", str(exc))
    if found is None:
        return StartupError(f"{service} cannot listen: {exc.strerror or exc}")
    host, port = found[1], int(found[2])
    keys = [key for key, value in _listener_ports(config) if value == port]
    named = f" ({' or '.join(keys)})" if keys else ""
    return StartupError(f"{service} cannot listen on {host}:{port}{named}: the address {what}")


def stop_signal() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM from now on (call it before saying "running", so
    that a signal sent as soon as the process says so stops it cleanly)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def resolve_database(config: Config) -> str | None:
    return database_url(config)
