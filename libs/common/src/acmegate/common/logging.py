"""structlog set-up: one JSON object per line, every line carrying the correlation id.

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


def configure(level: str = "info", *, json: bool = True, service: str | None = None) -> None:
    """Configure structlog and the standard library logging it renders through."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _add_correlation_id,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
        structlog.processors.format_exc_info,
    ]
    if service:
        processors.insert(0, _static("service", service))
    processors.append(
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr)


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
