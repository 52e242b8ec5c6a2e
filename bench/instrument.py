"""The ``acmegate`` command with counters on its SQL statements and bus messages.

``python -m bench.instrument <acmegate arguments>`` runs the CLI unchanged, except that every
statement sent through asyncpg (its text, how often, the seconds callers waited) and every
message published or broadcast on the bus (by queue) is counted. ``SIGUSR1`` writes the counts
so far to ``$ACMEGATE_BENCH_COUNTS.<pid>.<n>.json`` (n = 1, 2, …): the benchmark takes one
snapshot before and one after the measured run and divides the difference by the enrollments.

For ``--count-sql`` runs only: the wrappers cost CPU, so these runs are not timed.
"""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

import asyncpg.connection

from acmegate.cli.main import main
from acmegate.common.bus import amqp, inprocess

statements: Counter[str] = Counter()
waited: Counter[str] = Counter()
messages: Counter[str] = Counter()
_snapshots = 0
_SPACES = re.compile(r"\s+")


def _key(query: str) -> str:
    return _SPACES.sub(" ", query).strip()[:300]


def _count_sql(method: Callable[..., Awaitable[Any]], *, simple_only: bool) -> Any:
    @functools.wraps(method)
    async def counted(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        # execute() without arguments is a simple query; with arguments it goes through
        # _execute(), which counts it: count each statement once.
        if simple_only and args:
            return await method(self, query, *args, **kwargs)
        key = _key(query if isinstance(query, str) else str(query))
        statements[key] += 1
        began = time.perf_counter()
        try:
            return await method(self, query, *args, **kwargs)
        finally:
            waited[key] += time.perf_counter() - began

    return counted


def _count_bus(method: Callable[..., Awaitable[Any]], kind: str) -> Any:
    @functools.wraps(method)
    async def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        queue = args[0] if kind == "publish" else "notify"
        message = args[-1]
        messages[f"{kind} {queue} {type(message).__name__}"] += 1
        return await method(self, *args, **kwargs)

    return counted


def _snapshot(_signum: int, _frame: FrameType | None) -> None:
    global _snapshots
    _snapshots += 1
    path = f"{os.environ['ACMEGATE_BENCH_COUNTS']}.{os.getpid()}.{_snapshots}.json"
    with open(path, "w") as out:
        json.dump(
            {
                "argv": sys.argv[1:],
                "statements": statements,
                "waited_seconds": waited,
                "messages": messages,
            },
            out,
        )


def install() -> None:
    """Wrap asyncpg's statement entry points and both buses' publishers."""
    connection = asyncpg.connection.Connection
    connection.execute = _count_sql(connection.execute, simple_only=True)  # type: ignore[method-assign]
    connection._execute = _count_sql(connection._execute, simple_only=False)  # type: ignore[method-assign]
    connection._executemany = _count_sql(connection._executemany, simple_only=False)  # type: ignore[method-assign]
    for bus in (amqp.AmqpBus, inprocess.InProcessBus):
        bus.publish = _count_bus(bus.publish, "publish")  # type: ignore[method-assign]
        bus.broadcast = _count_bus(bus.broadcast, "broadcast")  # type: ignore[method-assign]
    signal.signal(signal.SIGUSR1, _snapshot)


if __name__ == "__main__":
    install()
    sys.exit(main())
