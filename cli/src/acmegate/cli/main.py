"""The ``acmegate`` command.

Exit codes: 0 success, 1 the operation failed (e.g. an enrollment was refused), 2 bad usage or
configuration (the message names the key or option).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from acmegate.common import logging as acmegate_logging
from acmegate.common.config import Config, ConfigError, SecretUnavailable, load_config

EXIT_FAILED = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A clear error for the person at the terminal (exit code 2)."""


def _load(path: str) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise CliError(f"configuration error: {exc}") from exc


def _configure_logging(config: Config, service: str) -> None:
    acmegate_logging.configure(config.logging.level, json=config.logging.json, service=service)


def _check(config: Config, names: Sequence[str]) -> None:
    from acmegate.cli.compose import validate

    problems = validate(config, names)
    if problems:
        raise CliError("configuration error: " + "; ".join(problems))


# --- commands ----------------------------------------------------------------------------------


def cmd_standalone(args: argparse.Namespace) -> int:
    from acmegate.cli import standalone
    from acmegate.cli.compose import SERVICE_NAMES, resolve_database, running, wait_for_signal

    config = _load(args.config)
    _configure_logging(config, "standalone")
    if config.dev.bootstrap:
        for line in standalone.bootstrap_dev(config):
            print(f"acmegate: {line}", file=sys.stderr)
    standalone.warn_dev(config)
    _check(config, SERVICE_NAMES)

    async def main() -> None:
        database = resolve_database(config)
        if database is None:
            data_dir = (
                config.database.embedded.data_dir if config.database.embedded else "var/postgres"
            )
            database = await standalone.embedded_database(data_dir)
        async with running(config, SERVICE_NAMES, database=database, in_process=True) as state:
            frontend = state.services["frontend"]
            directory = getattr(frontend, "directory_url", "")
            print(f"acmegate standalone is running. ACME directory: {directory}", flush=True)
            if config.certificate_authorities:
                chain = config.certificate_authorities[0].chain
                if chain:
                    print(f"  root CA certificate: {chain[-1]}", flush=True)
            if standalone.untrusted_attestation_roots(config) and config.attestation_providers:
                ca_dir = Path(config.attestation_providers[0].roots[0]).parent
                print(
                    "  enroll a simulated device:\n"
                    f"    acmegate simulate-device --directory {directory} "
                    f"--serial C02DEMO0001 --attestation-ca {ca_dir}",
                    flush=True,
                )
            await wait_for_signal()

    _run(main())
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from acmegate.cli.compose import SERVICE_NAMES, resolve_database, running, wait_for_signal
    from acmegate.common.health import HealthServer

    if args.service not in SERVICE_NAMES:
        raise CliError(f"unknown service {args.service!r}; one of {', '.join(SERVICE_NAMES)}")
    config = _load(args.config)
    _configure_logging(config, args.service)
    _check(config, [args.service])

    async def main() -> None:
        async with running(config, [args.service], database=resolve_database(config)) as state:
            health = None
            if args.health_port:
                health = HealthServer(state.runtime, args.health_host, args.health_port)
                await health.start()
            service = state.services[args.service]
            where = getattr(service, "directory_url", None)
            print(
                f"acmegate {args.service} is running" + (f": {where}" if where else ""), flush=True
            )
            try:
                await wait_for_signal()
            finally:
                if health is not None:
                    await health.stop()

    _run(main())
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from acmegate.cli.compose import SERVICE_NAMES, migrate_database, resolve_database

    config = _load(args.config)
    database = resolve_database(config)
    if database is None:
        raise CliError("database.url (or ACMEGATE_DATABASE_URL) is required to migrate")
    applied = asyncio.run(migrate_database(database, SERVICE_NAMES))
    print("\n".join(f"applied {name}" for name in applied) or "database is up to date")
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    from acmegate.cli.compose import SERVICE_NAMES

    config = _load(args.config)
    _check(config, SERVICE_NAMES)
    print(f"{args.config}: OK")
    return 0


def cmd_ca_init(args: argparse.Namespace) -> int:
    from acmegate.signer.ca_init import CaSetupError, ExistingRoot, init_ca

    passphrase = _passphrase(args.passphrase_env)
    root = None
    if args.root_cert or args.root_key:
        if not (args.root_cert and args.root_key):
            raise CliError("--root-cert and --root-key go together")
        root = ExistingRoot(
            Path(args.root_cert).read_bytes(),
            Path(args.root_key).read_bytes(),
            os.environ.get(args.root_key_password_env) if args.root_key_password_env else None,
        )
    try:
        files = init_ca(
            args.out,
            name=args.name,
            common_name=args.common_name,
            subject=_subject(args.subject),
            key_type=args.key_type,
            hash=args.hash,
            root_validity_years=args.root_validity_years,
            intermediate_validity_years=args.validity_years,
            passphrase=passphrase,
            root=root,
            passphrase_env=args.passphrase_env,
        )
    except CaSetupError as exc:
        raise CliError(str(exc)) from exc
    print(f"created {files.certificate} and {files.key}")
    print("add this to your configuration:\n")
    print(files.config_yaml)
    return 0


def cmd_ca_import(args: argparse.Namespace) -> int:
    from acmegate.signer.ca_init import CaSetupError, import_ca

    passphrase = _passphrase(args.passphrase_env)
    key_password = os.environ.get(args.key_password_env) if args.key_password_env else None
    try:
        files = import_ca(
            args.out,
            name=args.name,
            certificate_pem=Path(args.certificate).read_bytes(),
            key_pem=Path(args.key).read_bytes(),
            key_password=key_password,
            chain_pems=[Path(p).read_bytes() for p in args.chain],
            passphrase=passphrase,
            passphrase_env=args.passphrase_env,
        )
    except (CaSetupError, OSError) as exc:
        raise CliError(str(exc)) from exc
    print(f"imported {files.certificate} and {files.key}")
    print("add this to your configuration:\n")
    print(files.config_yaml)
    return 0


def cmd_simulate_device(args: argparse.Namespace) -> int:
    from acmegate.testkit.device import DeviceMode, format_result, simulate

    try:
        mode = DeviceMode(args.mode)
    except ValueError as exc:
        choices = ", ".join(m.value for m in DeviceMode)
        raise CliError(f"unknown --mode {args.mode!r}; one of {choices}") from exc
    result = asyncio.run(
        simulate(
            args.directory,
            serial=args.serial,
            udid=args.udid,
            attestation_ca_dir=Path(args.attestation_ca),
            client_identifier=args.client_identifier,
            mode=mode,
            os=args.os,
        )
    )
    print(format_result(result))
    return 0 if result.ok else EXIT_FAILED


# --- helpers -----------------------------------------------------------------------------------


def _passphrase(env: str) -> str:
    value = os.environ.get(env)
    if not value:
        raise CliError(f"set the CA key passphrase in the environment variable {env}")
    return value


def _subject(pairs: Sequence[str]) -> list[tuple[str, str]]:
    result = []
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name or not value:
            raise CliError(f"--subject expects NAME=VALUE, got {pair!r}")
        result.append((name, value))
    return result


def _run(coroutine: object) -> None:
    import uvloop

    try:
        uvloop.run(coroutine)  # type: ignore[arg-type]
    except KeyboardInterrupt:
        pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="acmegate", description="ACME gateway for managed Apple devices."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
    p.add_argument("--config", required=True)
    p.set_defaults(func=cmd_migrate)

    config = commands.add_parser("config", help="configuration tools")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    p = config_commands.add_parser("check", help="validate a configuration file")
    p.add_argument("--config", required=True)
    p.set_defaults(func=cmd_config_check)

    ca = commands.add_parser("ca", help="certificate authorities")
    ca_commands = ca.add_subparsers(dest="ca_command", required=True)
    p = ca_commands.add_parser("init", help="create an issuing CA (and a root unless given)")
    p.add_argument("--out", required=True, help="directory for the certificates and keys")
    p.add_argument("--name", required=True, help="the CA's name in the configuration")
    p.add_argument("--common-name", required=True)
    p.add_argument("--subject", action="append", default=[], help="extra RDN, e.g. O=Example")
    p.add_argument(
        "--key-type",
        default="ec-p384",
        choices=["rsa2048", "rsa3072", "rsa4096", "ec-p256", "ec-p384"],
    )
    p.add_argument("--hash", default="sha384", choices=["sha256", "sha384"])
    p.add_argument("--root-validity-years", type=int, default=20)
    p.add_argument("--validity-years", type=int, default=10)
    p.add_argument("--root-cert", help="put the new CA under this existing root (PEM)")
    p.add_argument("--root-key", help="the existing root's key (PEM)")
    p.add_argument("--root-key-password-env", help="env var holding the root key's password")
    p.add_argument("--passphrase-env", default="ACMEGATE_CA_PASSPHRASE")
    p.set_defaults(func=cmd_ca_init)

    p = ca_commands.add_parser("import", help="import an existing issuing CA")
    p.add_argument("--out", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--certificate", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--key-password-env", help="env var holding the key's current password")
    p.add_argument("--chain", action="append", default=[], help="issuer certificates (PEM)")
    p.add_argument("--passphrase-env", default="ACMEGATE_CA_PASSPHRASE")
    p.set_defaults(func=cmd_ca_import)

    p = commands.add_parser("simulate-device", help="enroll a simulated Apple device")
    p.add_argument("--directory", required=True, help="the gateway's ACME directory URL")
    p.add_argument("--serial", required=True)
    p.add_argument("--udid")
    p.add_argument("--client-identifier", help="default: the serial")
    p.add_argument(
        "--attestation-ca",
        default="var/dev/attestation-ca",
        help="directory of the TEST attestation CA the gateway trusts",
    )
    p.add_argument("--mode", default="genuine", help="a negative mode, e.g. wrong-token-hash")
    p.add_argument("--os", default="macos", choices=["macos", "ios"])
    p.set_defaults(func=cmd_simulate_device)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except (CliError, SecretUnavailable) as exc:
        print(f"acmegate: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
