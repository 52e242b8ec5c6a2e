"""The ``acmegate`` command: every module of :mod:`acmegate.cli.commands` adds its subcommands.

Exit codes: 0 success, 1 the operation failed (e.g. an enrollment was refused, PostgreSQL or
RabbitMQ stayed unreachable at start, a listener's port is taken), 2 bad usage or configuration
(the message names the key or option).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

import structlog

from acmegate.cli import commands
from acmegate.cli.errors import (
    EXIT_FAILED,
    EXIT_USAGE,
    CliError,
    OperationFailed,
    missing_dev_extra,
)
from acmegate.common.config import ConfigError, SecretUnavailable
from acmegate.common.startup import StartupError


def _version() -> str:
    try:
        return version("acmegate-cli")
    except PackageNotFoundError:  # a source tree without installed metadata
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="acmegate", description="ACME gateway for managed Apple devices."
    )
    parser.add_argument("--version", action="version", version=f"acmegate {_version()}")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"{commands.__name__}.{module.name}").register(subcommands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not structlog.is_configured():
        # Until a command configures logging, whatever is logged (a CRL published by `cert
        # revoke --config`, say) goes to stderr: stdout is the command's output (--json).
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    try:
        code: int = args.func(args)
        return code
    except (CliError, SecretUnavailable) as exc:
        print(f"acmegate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ModuleNotFoundError as exc:
        error = missing_dev_extra(exc)
        if error is None:
            raise
        print(f"acmegate: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:
        print(f"acmegate: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (StartupError, OperationFailed) as exc:
        print(f"acmegate: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
