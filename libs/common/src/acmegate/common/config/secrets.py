"""Secrets come from the environment or from files, never from the YAML itself (docs/design.md
"Configuration and secrets")."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec


class SecretUnavailable(Exception):
    """The environment variable or file that holds a secret is missing or empty."""


class Secret(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``{env: NAME}`` or ``{file: PATH}``; its value is read only when needed, never logged."""

    env: str | None = None
    file: str | None = None

    def __post_init__(self) -> None:
        if (self.env is None) == (self.file is None):
            raise ValueError("a secret names exactly one of `env` or `file`")

    def reveal(self) -> str:
        """The secret's value (stripped of a trailing newline when read from a file)."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if not value:
                raise SecretUnavailable(f"environment variable {self.env} is not set")
            return value
        assert self.file is not None
        try:
            value = Path(self.file).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise SecretUnavailable(f"secret file {self.file}: {exc.strerror}") from exc
        if not value:
            raise SecretUnavailable(f"secret file {self.file} is empty")
        return value

    def describe(self) -> str:
        """Where the secret lives, for error messages (never its value)."""
        return f"env {self.env}" if self.env is not None else f"file {self.file}"

    def __repr__(self) -> str:
        return f"Secret({self.describe()})"


def env_override(variable: str, configured: str | Secret | None) -> str | None:
    """The value of environment ``variable`` if set, else ``configured`` (revealed if it is a
    secret reference): how a deployment gives the database and broker URLs, which carry
    passwords, without writing them into the YAML."""
    from_env = os.environ.get(variable)
    if from_env:
        return from_env
    if isinstance(configured, Secret):
        return configured.reveal()
    return configured
