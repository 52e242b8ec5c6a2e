"""CPU accounting from ``/proc``: the gateway, the load generator, PostgreSQL, RabbitMQ, and
everything else on the machine (other users of a shared machine: the noise figure).

PostgreSQL is counted in two parts: the backends serving the benchmark's own database (found
in ``pg_stat_activity``, exactly ours) and the server's shared processes (WAL writer,
checkpointer, background writer, autovacuum, postmaster), which also work for any other
database on the server. RabbitMQ is one ``beam.smp`` for every user of the broker; its idle
rate is sampled before the run and subtracted.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import asyncpg

TICKS = os.sysconf("SC_CLK_TCK")
_PG_SHARED = (
    "checkpointer",
    "background writer",
    "walwriter",
    "autovacuum",
    "logical replication",
    "stats collector",
)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads), 0 once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def total_cpu_seconds(pids: Iterable[int]) -> float:
    """The sum of :func:`cpu_seconds` over ``pids``."""
    return sum(cpu_seconds(pid) for pid in pids)


def machine_busy_seconds() -> float:
    """CPU seconds every core spent not idle since boot (``/proc/stat``)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / TICKS


def _processes() -> Iterable[tuple[int, str, str]]:
    """(pid, comm, cmdline) of every process we may read."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        yield int(entry.name), comm, cmdline


def rabbitmq_pids() -> list[int]:
    """The broker's Erlang VM (``beam.smp``)."""
    return [pid for pid, comm, _ in _processes() if comm.startswith("beam")]


def postgres_shared_pids() -> list[int]:
    """The postmaster and the server's background processes (not client backends)."""
    pids = []
    for pid, comm, cmdline in _processes():
        if comm != "postgres" and not comm.startswith("postgres"):
            continue
        if cmdline.startswith("/") or any(part in cmdline for part in _PG_SHARED):
            pids.append(pid)
    return pids


async def backend_pids(admin_url: str, database: str) -> list[int]:
    """The PostgreSQL backends connected to ``database`` right now."""
    connection = await asyncpg.connect(admin_url)
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
    finally:
        await connection.close()
    return [int(row["pid"]) for row in rows]


@dataclass
class Meter:
    """CPU seconds of a set of processes between :meth:`start` and :meth:`stop`."""

    pids: list[int]
    started: float = 0.0
    seconds: float = 0.0

    def start(self) -> None:
        self.started = total_cpu_seconds(self.pids)

    def stop(self, extra_pids: Iterable[int] = ()) -> float:
        """Stop; ``extra_pids`` (born during the interval, e.g. new pool connections) count
        in full."""
        new = [pid for pid in extra_pids if pid not in self.pids]
        self.seconds = total_cpu_seconds(self.pids) - self.started + total_cpu_seconds(new)
        return self.seconds


async def idle_rate(pids: list[int], seconds: float = 3.0) -> float:
    """CPU seconds per second ``pids`` burn while the benchmark sends nothing."""
    before = total_cpu_seconds(pids)
    began = time.perf_counter()
    await asyncio.sleep(seconds)
    return (total_cpu_seconds(pids) - before) / (time.perf_counter() - began)
