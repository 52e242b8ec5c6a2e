"""Running the gateway: ``standalone``, ``run``, ``migrate``, ``config check``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from acmegate.cli.errors import CliError, check, configure_logging, load, run_async


def cmd_standalone(args: argparse.Namespace) -> int:
    from acmegate.cli import standalone
    from acmegate.cli.compose import SERVICE_NAMES, resolve_database, running, wait_for_signal

    config = load(args.config)
    configure_logging(config, "standalone")
    if config.dev.bootstrap:
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
        async with running(config, SERVICE_NAMES, database=database, in_process=True) as state:
            for line in standalone.banner(config, state.services["frontend"]):
                print(line, flush=True)
            await wait_for_signal()

    run_async(main())
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from acmegate.cli.compose import (
        SERVICE_NAMES,
        resolve_database,
        running,
        schema_migrations,
        wait_for_signal,
    )
    from acmegate.common.health import HealthServer

    if args.service not in SERVICE_NAMES:
        raise CliError(f"unknown service {args.service!r}; one of {', '.join(SERVICE_NAMES)}")
    config = load(args.config)
    configure_logging(config, args.service)
    check(config, [args.service])

    # A service that owns no schema (attestation) reads no database URL, so its deployment
    # needs no database secret.
    database = resolve_database(config) if schema_migrations([args.service]) else None

    async def main() -> None:
        async with running(config, [args.service], database=database) as state:
            health = None
            if args.health_port:
                health = HealthServer(state.runtime, args.health_host, args.health_port)
                await health.start()
            service: Any = state.services[args.service]
            where = getattr(service, "directory_url", None)
            print(
                f"acmegate {args.service} is running" + (f": {where}" if where else ""), flush=True
            )
            try:
                await wait_for_signal()
            finally:
                if health is not None:
                    await health.stop()

    run_async(main())
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from acmegate.cli.compose import SERVICE_NAMES, migrate_database, resolve_database

    # Without --config only ACMEGATE_DATABASE_URL is needed: a Kubernetes Job that mounts no
    # configuration stays the same when the configuration changes (docs/deploy.md).
    if args.config is None:
        database = os.environ.get("ACMEGATE_DATABASE_URL") or None
    else:
        database = resolve_database(load(args.config))
    if database is None:
        raise CliError("database.url (or ACMEGATE_DATABASE_URL) is required to migrate")
    applied = asyncio.run(migrate_database(database, SERVICE_NAMES))
    print("\n".join(f"applied {name}" for name in applied) or "database is up to date")
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    from acmegate.cli.compose import SERVICE_NAMES

    config = load(args.config)
    check(config, SERVICE_NAMES)
    print(f"{args.config}: OK")
    return 0


def register(commands: Any) -> None:
    p = commands.add_parser("standalone", help="all services in one process (embedded PostgreSQL)")
    p.add_argument("--config", required=True, help="YAML configuration file")
    p.set_defaults(func=cmd_standalone)

    p = commands.add_parser("run", help="run one service against RabbitMQ and PostgreSQL")
    p.add_argument("service", help="frontend, attestation, policy or signer")
    p.add_argument("--config", required=True)
    p.add_argument(
        "--health-port",
        type=int,
        default=int(os.environ.get("ACMEGATE_HEALTH_PORT", "0")),
        help="serve /healthz and /readyz on this port (0: off)",
    )
    p.add_argument("--health-host", default="0.0.0.0")  # noqa: S104 - probes come from outside
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
