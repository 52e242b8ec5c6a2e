"""Complete device enrollments per second against a real gateway.

Starts a gateway in child processes (``standalone``: one process, in-process bus; or
``distributed``: four ``acmegate run`` processes over RabbitMQ), all on a fresh database of the
local PostgreSQL, then drives it with simulated Apple devices from this process (closed loop,
``--concurrency`` devices at a time) and reports enrollments/s and latency percentiles.

    uv run --all-packages python -m bench.enroll --mode standalone --devices 2000 --concurrency 64
    uv run --all-packages python -m bench.enroll --mode both   # both modes, one run, with the ratio

Run from the repository root as a module (``-m``): Python then puts the root on the import path,
which is how ``tests.support.gateway`` (the same gateway the end-to-end tests start) is found.

Figures depend on the machine and what else runs on it: compare modes and versions within one
run (the JSON in bench/results/ keeps them), not across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import uvloop

from acmegate.testkit.apple_ca import AttestationCA, LeafClaims
from acmegate.testkit.device import SimulatedDevice
from tests.support.gateway import (
    Process,
    gateway_config,
    start_service,
    stop_service,
)

# Where each run keeps its JSON (not committed).
RESULTS = Path(__file__).resolve().parent / "results"
POSTGRES = os.environ.get("ACMEGATE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
AMQP = os.environ.get("ACMEGATE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


@dataclass
class Run:
    mode: str
    devices: int
    concurrency: int
    seconds: float = 0.0
    ok: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies) or [0.0]

        def pct(p: float) -> float:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 1)

        return {
            "mode": self.mode,
            "devices": self.devices,
            "concurrency": self.concurrency,
            "ok": self.ok,
            "failed": self.failed,
            "seconds": round(self.seconds, 2),
            "enrollments_per_second": round(self.ok / self.seconds, 1) if self.seconds else 0,
            "latency_ms": {
                "p50": pct(0.5),
                "p90": pct(0.9),
                "p99": pct(0.99),
                "mean": round(statistics.fmean(lat) * 1000, 1),
            },
            "errors": self.errors,
        }


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its waited-for children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


async def commits(database: str) -> int:
    """Transactions committed in ``database`` so far (one per autocommit statement)."""
    connection = await asyncpg.connect(POSTGRES)
    try:
        name = urlsplit(database).path.lstrip("/")
        await connection.execute("SELECT pg_stat_clear_snapshot()")
        value = await connection.fetchval(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1", name
        )
        return int(value)
    finally:
        await connection.close()


def inventory(n: int) -> list[dict[str, Any]]:
    return [
        {
            "serial_number": f"BENCH{i:06d}",
            "attributes": {"department": "Bench", "email": f"d{i}@example.com"},
            "groups": ["Cert-Eligible"],
        }
        for i in range(n)
    ]


async def fresh_database() -> str:
    name = f"acmegate_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(POSTGRES)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return urlunsplit(urlsplit(POSTGRES)._replace(path=f"/{name}"))


async def drop_database(url: str) -> None:
    admin = await asyncpg.connect(POSTGRES)
    try:
        name = urlsplit(url).path.lstrip("/")
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def start_gateway(
    mode: str, folder: Path, ca: AttestationCA, devices: int
) -> tuple[Any, list[tuple[Process, asyncio.Task[None]]], str]:
    namespace = f"bench{secrets.token_hex(3)}"
    files = gateway_config(
        folder,
        ca,
        namespace=namespace,
        overrides={
            "signal_sources": [
                {"name": "inventory", "type": "static", "devices": inventory(devices)}
            ],
            "logging": {"level": "warning", "json": True},
            "database": {"pool_min": 4, "pool_max": 16},
            "bus": {"namespace": namespace, "prefetch": 128},
        },
    )
    database = await fresh_database()
    env = {"ACMEGATE_DATABASE_URL": database, "ACMEGATE_AMQP_URL": AMQP}
    started: list[tuple[Process, asyncio.Task[None]]] = []
    if mode == "standalone":
        started.append(await start_standalone(files.config_path, env))
    else:
        for name in ("signer", "policy", "attestation", "frontend"):
            started.append(await start_service(name, files, env))
    return files, started, database


async def start_standalone(config: Path, env: dict[str, str]) -> tuple[Process, asyncio.Task[None]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "acmegate.cli.main",
        "standalone",
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **env},
    )
    proc = Process("standalone", process)
    ready = asyncio.Event()

    async def pump() -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            proc.output.append(line)
            if "is running" in line:
                ready.set()

    task = asyncio.create_task(pump())
    await asyncio.wait_for(ready.wait(), 60)
    return proc, task


async def drive(directory: str, ca: AttestationCA, run: Run) -> None:
    # Each worker is its own client address (127.1.0.x; Linux answers all of 127/8 on the
    # loopback), as devices at many sites are: the per-address limits see many clients.
    sessions = [
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=0, local_addr=(f"127.1.{w // 250}.{w % 250 + 1}", 0)
            )
        )
        for w in range(run.concurrency)
    ]
    try:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(run.devices):
            queue.put_nowait(i)

        async def worker(http: aiohttp.ClientSession) -> None:
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                serial = f"BENCH{i:06d}"
                device = SimulatedDevice(
                    directory,
                    serial,
                    LeafClaims.macos(serial),
                    ca,
                    session=http,
                    poll_interval=0.05,
                    poll_timeout=120,
                )
                began = time.perf_counter()
                try:
                    result = await device.enroll()
                except Exception as exc:  # counted and reported
                    run.failed += 1
                    key = type(exc).__name__
                    run.errors[key] = run.errors.get(key, 0) + 1
                    continue
                if result.ok:
                    run.ok += 1
                    run.latencies.append(time.perf_counter() - began)
                else:
                    run.failed += 1
                    key = result.problem.kind if result.problem else "unknown"
                    run.errors[key] = run.errors.get(key, 0) + 1

        began = time.perf_counter()
        await asyncio.gather(*(worker(http) for http in sessions))
        run.seconds = time.perf_counter() - began
    finally:
        for http in sessions:
            await http.close()


async def one(mode: str, devices: int, concurrency: int, warmup: int) -> dict[str, Any]:
    ca = AttestationCA.generate()
    with tempfile.TemporaryDirectory() as tmp:
        files, started, database = await start_gateway(mode, Path(tmp), ca, devices + warmup)
        try:
            if warmup:
                await drive(files.directory_url, ca, Run(mode, warmup, concurrency))
            run = Run(mode, devices, concurrency)
            pids = [proc.process.pid for proc, _ in started]
            gateway_before = sum(cpu_seconds(pid) for pid in pids)
            commits_before = await commits(database)
            load_before = time.process_time()
            # Warm-up used BENCH000000..; the measured run reuses the same serials (new keys).
            await drive(files.directory_url, ca, run)
            summary = run.summary()
            gateway_cpu = sum(cpu_seconds(pid) for pid in pids) - gateway_before
            load_cpu = time.process_time() - load_before
            summary["sql_transactions_per_enrollment"] = round(
                (await commits(database) - commits_before) / max(run.ok, 1), 1
            )
            summary["cpu_ms_per_enrollment"] = {
                "gateway_processes": round(gateway_cpu * 1000 / max(run.ok, 1), 2),
                "load_generator": round(load_cpu * 1000 / max(run.ok, 1), 2),
            }
            connection = await asyncpg.connect(database)
            try:
                summary["certificates_issued"] = await connection.fetchval(
                    "SELECT count(*) FROM pki.certificates"
                )
            finally:
                await connection.close()
            return summary
        finally:
            for proc, pump in reversed(started):
                await stop_service(proc, pump)
            await drop_database(database)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=["standalone", "distributed", "both"], default="both")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=100)
    args = parser.parse_args()
    modes = ["standalone", "distributed"] if args.mode == "both" else [args.mode]
    results = [await one(m, args.devices, args.concurrency, args.warmup) for m in modes]
    report: dict[str, Any] = {
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "runs": results,
    }
    if len(results) == 2 and results[0]["enrollments_per_second"]:
        report["distributed_over_standalone"] = round(
            results[1]["enrollments_per_second"] / results[0]["enrollments_per_second"], 2
        )
    out = RESULTS
    out.mkdir(exist_ok=True)
    path = out / f"enroll-{report['at'].replace(':', '')}.json"
    path.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    uvloop.run(main())
