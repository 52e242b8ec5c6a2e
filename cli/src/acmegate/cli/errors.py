"""Errors and helpers shared by the CLI commands."""

from __future__ import annotations

import os
from collections.abc import Coroutine, Sequence
from typing import Any

from acmegate.common import logging as acmegate_logging
from acmegate.common import tracing
from acmegate.common.config import Config, ConfigError, load_config

EXIT_FAILED = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A clear error for the person at the terminal (exit code 2)."""


class OperationFailed(Exception):
    """The operation could not be done, e.g. the gateway is unreachable (exit code 1)."""


# Modules of the ``dev`` extra of acmegate-cli, which production installs (the container image)
# leave out.
DEV_EXTRA_MODULES = ("acmegate.testkit", "pgserver")


def missing_dev_extra(exc: ModuleNotFoundError) -> CliError | None:
    """A CliError naming the ``dev`` extra if ``exc`` is about one of its modules, else None."""
    name = exc.name or ""
    if not any(name == module or name.startswith(module + ".") for module in DEV_EXTRA_MODULES):
        return None
    return CliError(
        f"this command needs the development extras ({name} is not installed): "
        "install acmegate-cli[dev]; production installs such as the container image leave "
        "them out"
    )


def load(path: str) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise CliError(f"configuration error: {exc}") from exc


def configure_logging(config: Config, service: str) -> None:
    acmegate_logging.configure(
        config.logging.level,
        json=config.logging.json,
        service=service,
        access_log=config.logging.access_log,
    )


def configure_observability(config: Config, service: str) -> None:
    """Logging and (if ``tracing.enabled``) tracing of a process that runs services."""
    configure_logging(config, service)
    tracing.configure(config.tracing, service=service)


def check(config: Config, names: Sequence[str]) -> None:
    """Every named service's own configuration checks; raises CliError listing the problems."""
    from acmegate.cli.compose import validate

    problems = validate(config, names)
    if problems:
        raise CliError("configuration error: " + "; ".join(problems))


def env_secret(name: str, what: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise CliError(f"set {what} in the environment variable {name}")
    return value


def run_async(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coroutine`` on uvloop; Ctrl-C ends it quietly. Spans still buffered are exported
    before the process ends."""
    import uvloop

    try:
        return uvloop.run(coroutine)
    except KeyboardInterrupt:
        return None
    finally:
        tracing.shutdown()
