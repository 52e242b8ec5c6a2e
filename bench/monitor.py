"""Sampling during a run: how busy each gateway process is and how deep each queue is.

Every ``interval`` seconds: the CPU each process used since the last sample, as a fraction of
one core ("busy"), and, for a gateway on RabbitMQ, the ready messages of each work queue
(a passive declare on its own connection, answered by the broker without touching the
queue). With a prefetch above the number of messages in flight, consumers take every message
at once and "ready" stays 0: the backlog then sits in the consumer's prefetch buffer, so
``unacked=True`` also samples ready + unacknowledged messages per queue with ``rabbitmqctl``
every ``unacked_interval`` seconds (about 0.4 s of CPU per call, which the run's
``rest_of_machine`` then includes). By Little's law the messages a stage holds are its
arrival rate times the time a message spends there, so the stage holding the most is the
slowest; one that serialises the pipeline shows near 100 % busy with its count growing.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import aio_pika

from acmegate.common.bus import Queue
from bench.gateway import AMQP, Gateway
from bench.processes import cpu_seconds


@dataclass
class Monitor:
    """Samples ``gateway`` until :meth:`stop`."""

    gateway: Gateway
    interval: float = 0.5
    unacked: bool = False
    unacked_interval: float = 2.0
    in_flight: dict[str, list[int]] = field(default_factory=dict)
    in_flight_times: list[float] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    busy: dict[str, list[float]] = field(default_factory=dict)
    queues: dict[str, list[int]] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._run()))
        if self.unacked and self.gateway.mode == "distributed":
            self._tasks.append(asyncio.create_task(self._sample_in_flight()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _sample_in_flight(self) -> None:
        began = time.perf_counter()
        prefix = f"{self.gateway.namespace}."
        wanted = {f"{prefix}{queue}": str(queue) for queue in Queue}
        while True:
            await asyncio.sleep(self.unacked_interval)
            listing = await asyncio.create_subprocess_exec(
                "rabbitmqctl",
                *("list_queues", "-q", "name", "messages_ready", "messages_unacknowledged"),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            out, _ = await listing.communicate()
            self.in_flight_times.append(round(time.perf_counter() - began, 2))
            for line in out.decode().splitlines():
                parts = line.split()
                if len(parts) == 3 and parts[0] in wanted:
                    held = int(parts[1]) + int(parts[2])
                    self.in_flight.setdefault(wanted[parts[0]], []).append(held)

    async def _run(self) -> None:
        connection = None
        channel = None
        if self.gateway.mode == "distributed":
            connection = await aio_pika.connect(AMQP)
            channel = await connection.channel()
        try:
            began = time.perf_counter()
            last = {s.name: cpu_seconds(s.pid) for s in self.gateway.services}
            last_at = began
            while True:
                await asyncio.sleep(self.interval)
                now = time.perf_counter()
                self.times.append(round(now - began, 2))
                for service in self.gateway.services:
                    used = cpu_seconds(service.pid)
                    share = (used - last[service.name]) / (now - last_at)
                    self.busy.setdefault(service.name, []).append(round(share, 3))
                    last[service.name] = used
                last_at = now
                if channel is not None:
                    for queue in Queue:
                        name = f"{self.gateway.namespace}.{queue}"
                        declared = await channel.declare_queue(name, passive=True)
                        depth = declared.declaration_result.message_count or 0
                        self.queues.setdefault(str(queue), []).append(depth)
        finally:
            if connection is not None:
                await connection.close()

    def summary(self) -> dict[str, Any]:
        """Mean and peak busy share per process and per service; mean and peak queue depth;
        the series themselves for plotting."""
        per_service: dict[str, list[float]] = {}
        for name, series in self.busy.items():
            service = name.rsplit("-", 1)[0]
            summed = per_service.setdefault(service, [0.0] * len(series))
            for i, value in enumerate(series):
                summed[i] += value
        return {
            "interval_seconds": self.interval,
            "busy_share_of_one_core": {
                name: _stats(series) for name, series in sorted(self.busy.items())
            },
            "busy_share_per_service": {
                name: _stats(series) for name, series in sorted(per_service.items())
            },
            "queue_depth": {name: _stats(series) for name, series in sorted(self.queues.items())},
            "queue_ready_plus_unacked": {
                name: _stats(series) for name, series in sorted(self.in_flight.items())
            },
            "series": {
                "t": self.times,
                "busy": self.busy,
                "queue_depth": self.queues,
                "t_unacked": self.in_flight_times,
                "ready_plus_unacked": self.in_flight,
            },
        }


def _stats(series: list[float] | list[int]) -> dict[str, float]:
    # The first and last samples straddle the ramp-up and drain; leave them out when we can.
    core = series[1:-1] if len(series) > 4 else series
    if not core:
        return {"mean": 0.0, "p90": 0.0, "max": 0.0}
    ordered = sorted(core)
    return {
        "mean": round(statistics.fmean(core), 3),
        "p90": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 3),
        "max": round(max(core), 3),
    }
