"""Telling "a dependency is down" from a bug, and saying so once per outage.

A request that fails because PostgreSQL or RabbitMQ is unreachable is not the client's fault
and not a bug of ours: the client should come back later. RFC 8555 §6.6 lets a server answer
``503`` with ``Retry-After``; Apple's ACME client retries on that, while a ``500`` may end the
enrollment. And a traceback per request during a ten-second outage buries the one fact the
operator needs (when it went down, when it came back, for how long), so :class:`OutageLog`
writes one line when a dependency is first seen down and one when it answers again.
"""

from __future__ import annotations

import errno
import time
from dataclasses import dataclass, field

import aiormq.exceptions
import asyncpg
import structlog

log = structlog.get_logger(__name__)

# errno values of a peer that is gone or not there (a refused or reset connection).
_UNREACHABLE_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ETIMEDOUT,
    }
)
# How far along __cause__/__context__ to look (a wrapped asyncpg error, say).
_MAX_CHAIN = 8

DATABASE = "database"
BROKER = "message broker"
# A refused or reset connection says nothing of which server it was.
EITHER = "database or message broker"


def unavailable_dependency(exc: BaseException) -> str | None:
    """:data:`DATABASE`, :data:`BROKER` or :data:`EITHER` when ``exc`` (or what caused it)
    means a dependency cannot be reached; ``None`` for anything else (a bug, bad input)."""
    seen: BaseException | None = exc
    for _ in range(_MAX_CHAIN):
        if seen is None:
            return None
        found = _classify(seen)
        if found is not None:
            return found
        seen = seen.__cause__ or seen.__context__
    return None


def _classify(exc: BaseException) -> str | None:
    # A server that is shutting down, starting up or gone (SQLSTATE class 08 and 57P).
    if isinstance(
        exc,
        asyncpg.PostgresConnectionError
        | asyncpg.exceptions.OperatorInterventionError
        | asyncpg.InterfaceError,
    ):
        # InterfaceError covers a connection closed under a query and asyncpg's "another
        # operation is in progress" on a connection a dropped query left behind.
        return DATABASE
    if isinstance(
        exc,
        aiormq.exceptions.AMQPConnectionError
        | aiormq.exceptions.ChannelClosed
        # A robust channel used while its connection is being restored.
        | aiormq.exceptions.ChannelInvalidStateError,
    ):
        return BROKER
    if isinstance(exc, ConnectionError | TimeoutError):
        return EITHER
    if isinstance(exc, OSError) and exc.errno in _UNREACHABLE_ERRNOS:
        return EITHER
    return None


@dataclass
class OutageLog:
    """One log line when a dependency is first seen down, one when it answers again (with
    the outage's length), whatever the number of requests in between."""

    listener: str
    _down_since: dict[str, float] = field(default_factory=dict)

    def down(self, dependency: str, exc: BaseException) -> None:
        if dependency in self._down_since:
            return
        self._down_since[dependency] = time.monotonic()
        log.warning(
            "dependency unavailable; answering 503 until it is back",
            listener=self.listener,
            dependency=dependency,
            error=f"{type(exc).__name__}: {str(exc)[:200]}",
        )

    def up(self) -> None:
        """A request that needed every dependency succeeded: any outage is over."""
        if not self._down_since:
            return
        now = time.monotonic()
        for dependency, since in self._down_since.items():
            log.info(
                "dependency available again",
                listener=self.listener,
                dependency=dependency,
                outage_seconds=round(now - since, 1),
            )
        self._down_since.clear()
