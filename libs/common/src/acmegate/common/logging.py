"""structlog set-up: one JSON object per line, every line carrying the correlation id.

The libraries' own records (aiohttp, aio-pika/aiormq, asyncpg, anything using the standard
library's ``logging``) go through the same processors and renderer: with ``logging.json`` on,
every line on stderr is a JSON object with ``event``, ``level``, ``timestamp``, ``service``
and ``logger``, an exception included (``exception`` holds its traceback as one string).

Secrets never reach a log: configuration secrets are :class:`acmegate.common.config.secrets.Secret`
objects whose ``repr`` is redacted, and the processor below also masks well-known secret keys.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any

import structlog

_SECRET_KEYS = frozenset(
    {"password", "passphrase", "secret", "client_secret", "token", "authorization", "access_token"}
)


# The correlation id of the request or message being handled (this task only). A plain
# ContextVar read by one processor: cheaper than structlog's bound_contextvars on every message.
_CORRELATION_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "acmegate_correlation_id", default=None
)


def _add_correlation_id(
    _: Any, __: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    correlation_id = _CORRELATION_ID.get()
    if correlation_id is not None:
        event.setdefault("correlation_id", correlation_id)
    return event


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if key.lower() in _SECRET_KEYS:
            event[key] = "[redacted]"
    return event


# Whether the HTTP listeners write access-log lines (logging.access_log; on by default).
_ACCESS_LOG = True


def access_log_enabled() -> bool:
    """Whether every HTTP request gets an access-log line (``logging.access_log``, at level
    ``info`` or below)."""
    return _ACCESS_LOG


def current_correlation_id() -> str | None:
    """The correlation id bound to this task, if any."""
    return _CORRELATION_ID.get()


class _StdlibHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`configure` installs on the root logger (replaced, never stacked)."""


def configure(
    level: str = "info", *, json: bool = True, service: str | None = None, access_log: bool = True
) -> None:
    """Configure structlog, and route the standard library's records through it."""
    global _ACCESS_LOG
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    # Access lines are info: below that level they are not even built.
    _ACCESS_LOG = access_log and numeric <= logging.INFO
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _add_correlation_id,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if service:
        shared.insert(0, _static("service", service))
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[*shared, _redact, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = _StdlibHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _redact,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StdlibHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    # The libraries' INFO chatter (one line per AMQP channel, per pool connection) is not
    # the operator's business; their warnings and errors are.
    root.setLevel(max(numeric, logging.WARNING))
    # While PostgreSQL is down asyncpg's pool warns with a traceback each time it fails to
    # refill; the listeners and the sweeper log one line per outage instead (common/outages.py).
    # aiormq's and aio-pika's records stay (as JSON): they say which broker node went away.
    logging.getLogger("asyncpg.pool").setLevel(logging.ERROR)
    logging.captureWarnings(True)


def _static(key: str, value: str) -> Any:
    def add(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event.setdefault(key, value)
        return event

    return add


@contextlib.contextmanager
def bind_correlation_id(correlation_id: str | None) -> Iterator[None]:
    """Bind ``correlation_id`` to every log line emitted inside the block (this task only)."""
    if not correlation_id:
        yield
        return
    token = _CORRELATION_ID.set(correlation_id)
    try:
        yield
    finally:
        _CORRELATION_ID.reset(token)
