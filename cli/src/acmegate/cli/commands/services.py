"""Running the gateway: ``standalone``, ``run``, ``migrate``, ``config check``.

``standalone`` and ``run`` serve ``/healthz``, ``/readyz`` and ``/metrics`` on ``health.port``
(``--health-port`` or ``ACMEGATE_HEALTH_PORT`` override it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec

from acmegate.cli.errors import (
    EXIT_FAILED,
    CliError,
    check,
    configure_observability,
    load,
    run_async,
)
from acmegate.common.config import Config
from acmegate.common.config.model import HealthConfig
from acmegate.common.health import HealthServer
from acmegate.common.runtime import Runtime


def cmd_standalone(args: argparse.Namespace) -> int:
    from acmegate.cli import heap, standalone
    from acmegate.cli.compose import SERVICE_NAMES, resolve_database, running, stop_signal

    config = _with_health_options(load(args.config), args)
    configure_observability(config, "standalone")
    for line in standalone.bootstrap_dev(config):
        print(f"acmegate: {line}", file=sys.stderr)
    standalone.warn_dev(config)
    check(config, SERVICE_NAMES)

    async def main() -> None:
        database = resolve_database(config)
        if database is None:
            embedded = config.database.embedded
            database = await standalone.embedded_database(
                embedded.data_dir if embedded else "var/postgres"
            )
        async with (
            running(config, SERVICE_NAMES, database=database, in_process=True) as state,
            health_listener(state.runtime, config) as health,
        ):
            heap.settle()
            stop = stop_signal()
            for line in standalone.banner(config, state.services["frontend"]):
                print(line, flush=True)
            if health is not None:
                print(f"  health and metrics: {health.url}/metrics", flush=True)
            await stop.wait()

    run_async(main())
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from acmegate.cli import heap
    from acmegate.cli.compose import (
        SERVICE_NAMES,
        resolve_database,
        running,
        schema_migrations,
        stop_signal,
    )

    if args.service not in SERVICE_NAMES:
        raise CliError(f"unknown service {args.service!r}; one of {', '.join(SERVICE_NAMES)}")
    config = _with_health_options(load(args.config), args)
    configure_observability(config, args.service)
    check(config, [args.service])

    # A service that owns no schema (attestation) reads no database URL, so its deployment
    # needs no database secret.
    database = resolve_database(config) if schema_migrations([args.service]) else None

    async def main() -> None:
        async with (
            running(config, [args.service], database=database) as state,
            health_listener(state.runtime, config),
        ):
            heap.settle()
            stop = stop_signal()
            service: Any = state.services[args.service]
            where = getattr(service, "directory_url", None)
            print(
                f"acmegate {args.service} is running" + (f": {where}" if where else ""), flush=True
            )
            await stop.wait()

    run_async(main())
    return 0


@contextlib.asynccontextmanager
async def health_listener(runtime: Runtime, config: Config) -> AsyncIterator[HealthServer | None]:
    """``/healthz``, ``/readyz`` and ``/metrics`` on ``health.port`` (none when it is 0)."""
    from acmegate.cli.compose import listener_error

    if not config.health.port:
        yield None
        return
    health = HealthServer(runtime, config.health.host, config.health.port)
    try:
        await health.start()
    except OSError as exc:
        await health.stop()
        raise listener_error(config, "the health listener", exc) from exc
    try:
        yield health
    finally:
        await health.stop()


def _with_health_options(config: Config, args: argparse.Namespace) -> Config:
    """``--health-port``/``--health-host`` (or ACMEGATE_HEALTH_PORT) over ``health:``."""
    port = args.health_port
    if port is None and os.environ.get("ACMEGATE_HEALTH_PORT"):
        try:
            port = int(os.environ["ACMEGATE_HEALTH_PORT"])
        except ValueError as exc:
            raise CliError("ACMEGATE_HEALTH_PORT must be a port number") from exc
    health = config.health
    if port is not None or args.health_host is not None:
        if port is not None and not 0 <= port < 65536:
            raise CliError("--health-port must be between 0 (off) and 65535")
        health = HealthConfig(
            host=args.health_host if args.health_host is not None else health.host,
            port=port if port is not None else health.port,
        )
    return msgspec.structs.replace(config, health=health)


def cmd_migrate(args: argparse.Namespace) -> int:
    from acmegate.cli.compose import SERVICE_NAMES, migrate_database
    from acmegate.cli.database import database_url

    # Without --config only ACMEGATE_DATABASE_URL is needed: a Kubernetes Job that mounts no
    # configuration stays the same when the configuration changes (docs/deploy.md). With
    # it, the configured database or the standalone's embedded one, like every command.
    async def migrate() -> list[str]:
        if args.config is None:
            database = os.environ.get("ACMEGATE_DATABASE_URL") or None
            if database is None:
                raise CliError("database.url (or ACMEGATE_DATABASE_URL) is required to migrate")
        else:
            database = await database_url(load(args.config))
        return await migrate_database(database, SERVICE_NAMES)

    applied = asyncio.run(migrate())
    print("\n".join(f"applied {name}" for name in applied) or "database is up to date")
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    from acmegate.cli import config_report
    from acmegate.cli.compose import SERVICE_NAMES
    from acmegate.cli.standalone import DevBootstrap

    path = Path(args.config).resolve()
    config = load(args.config)
    # What `standalone` creates on its first start is not missing, it is to come.
    bootstrap = DevBootstrap.plan(config)
    check(bootstrap.as_if_done(config), SERVICE_NAMES)
    gaps = config_report.gaps(config)
    if gaps:
        print(f"{path}: valid, but a gateway with it cannot issue a certificate:")
        print("\n".join(f"  {gap}" for gap in gaps))
    else:
        print(f"{path}: OK")
    if bootstrap.lines():
        print("  the first `acmegate standalone` creates (dev.bootstrap):")
        print("\n".join(f"    {line}" for line in bootstrap.lines()))
    for note in config_report.notes(config):
        print(f"  note: {note}")
    return EXIT_FAILED if gaps else 0


def register(commands: Any) -> None:
    p = commands.add_parser("standalone", help="all services in one process (embedded PostgreSQL)")
    p.add_argument("--config", required=True, help="YAML configuration file")
    _health_options(p)
    p.set_defaults(func=cmd_standalone)

    p = commands.add_parser("run", help="run one service against RabbitMQ and PostgreSQL")
    p.add_argument("service", help="frontend, attestation, policy or signer")
    p.add_argument("--config", required=True)
    _health_options(p)
    p.set_defaults(func=cmd_run)

    p = commands.add_parser("migrate", help="apply database migrations")
    p.add_argument(
        "--config", help="YAML configuration file (default: ACMEGATE_DATABASE_URL alone)"
    )
    p.set_defaults(func=cmd_migrate)

    config = commands.add_parser("config", help="configuration tools")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    p = config_commands.add_parser("check", help="validate a configuration file")
    p.add_argument("--config", required=True)
    p.set_defaults(func=cmd_config_check)


def _health_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--health-port",
        type=int,
        default=None,
        help="serve /healthz, /readyz and /metrics on this port (0: off; default: "
        "ACMEGATE_HEALTH_PORT, else health.port)",
    )
    parser.add_argument("--health-host", default=None, help="default: health.host (0.0.0.0)")
