"""Starting against PostgreSQL and RabbitMQ that may not answer yet.

In a cluster the gateway's pods, the database and the broker start in any order. A starting
service therefore retries an unreachable PostgreSQL or RabbitMQ with capped exponential
backoff for ``startup.retry_for``, logging each attempt with the reason, and then gives up
with one :class:`DependencyUnavailable` line. An answer that no retry can change (a refused
password, a database that does not exist) is reported at once. Reconnecting after start is
the bus's and the pool's business, not this module's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

import aiormq.exceptions
import asyncpg
import structlog

log = structlog.get_logger(__name__)

T = TypeVar("T")

# Backoff between attempts: 0.5 s doubling up to 10 s.
_FIRST_DELAY = 0.5
_MAX_DELAY = 10.0


class StartupError(Exception):
    """A service cannot start for a reason outside its configuration file (exit code 1)."""


class DependencyUnavailable(StartupError):
    """PostgreSQL or RabbitMQ could not be used at start; the message says which and why."""


def where(url: str) -> str:
    """``host:port/path`` of a URL, never its credentials (for messages and logs)."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}{parts.path if parts.path not in ('', '/') else ''}"


def database_problem(exc: BaseException) -> tuple[str, bool]:
    """What went wrong connecting to PostgreSQL, and whether trying again may help."""
    if isinstance(exc, asyncpg.CannotConnectNowError | asyncpg.TooManyConnectionsError):
        return str(exc), True  # starting up, shutting down, or full: later may work
    if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError):
        return str(exc), False  # a refused role or password, a missing database
    if isinstance(exc, TimeoutError):
        return "no answer (timeout)", True
    if isinstance(exc, OSError):
        return exc.strerror or str(exc), True
    raise exc


def broker_problem(exc: BaseException) -> tuple[str, bool]:
    """What went wrong connecting to RabbitMQ, and whether trying again may help."""
    refused = aiormq.exceptions.AuthenticationError | aiormq.exceptions.ProbableAuthenticationError
    if isinstance(exc, refused):
        return f"the broker refused the credentials ({exc})", False
    if isinstance(exc, aiormq.exceptions.ConnectionNotAllowed):
        return f"the broker refused the virtual host ({exc})", False
    if isinstance(exc, aiormq.exceptions.AMQPConnectionError | OSError):
        return _strip_errno(str(exc)) or type(exc).__name__, True
    if isinstance(exc, TimeoutError):
        return "no answer (timeout)", True
    raise exc


def _strip_errno(text: str) -> str:
    # aiormq says "[Errno 111] Connection refused": the operator needs the second half.
    return text.split("] ", 1)[1] if text.startswith("[Errno") and "] " in text else text


async def retrying(
    what: str,
    attempt: Callable[[], Awaitable[T]],
    *,
    problem: Callable[[BaseException], tuple[str, bool]],
    retry_for: float,
) -> T:
    """``attempt()``'s result, trying again while ``problem`` calls the failure transient and
    ``retry_for`` seconds have not passed; else :class:`DependencyUnavailable`."""
    deadline = time.monotonic() + retry_for
    delay = _FIRST_DELAY
    tries = 0
    while True:
        tries += 1
        try:
            return await attempt()
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError,
                aiormq.exceptions.AMQPError) as exc:  # fmt: skip
            reason, transient = problem(exc)
        if not transient:
            raise DependencyUnavailable(f"cannot use {what}: {reason}")
        if time.monotonic() + delay > deadline:
            waited = f" (tried {tries} times over {retry_for:g}s, startup.retry_for)"
            raise DependencyUnavailable(
                f"{what} is unreachable: {reason}{waited if tries > 1 else ''}"
            )
        log.warning(f"waiting for {what}", reason=reason, attempt=tries, retry_in=delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, _MAX_DELAY)
