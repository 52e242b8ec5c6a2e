"""Complete device enrollments per second against a real gateway, with the whole machine's CPU
accounted for.

    uv run --all-packages python -m bench.enroll --mode both                 # closed loop
    uv run --all-packages python -m bench.enroll --mode both --rate 50,150   # open loop
    uv run --all-packages python -m bench.enroll --mode scaleout             # 1 vs 2 replicas
    uv run --all-packages python -m bench.enroll --mode standalone --profile bench/results/prof
    uv run --all-packages python -m bench.enroll --mode both --count-sql     # statements, hops

Each mode starts the gateway in child processes on a fresh database of the local PostgreSQL
(``standalone``: one process; ``distributed``: ``acmegate run`` per service over RabbitMQ,
``--replicas`` of attestation, policy and signer; ``scaleout``: distributed with 1, then 2
replicas), warms it up, then measures one phase per rate (open loop) or one closed-loop phase.
It prints and keeps (``bench/results/*.json``, not committed) enrollments/s, latency
percentiles of each step and of the whole enrollment, SQL transactions per enrollment, CPU
milliseconds per enrollment of the gateway, the load generator, PostgreSQL, RabbitMQ and the
rest of the machine, per-process busy share and queue depths over the phase, and the crypto
floor measured at the start of the run with ``floor ÷ gateway CPU``.

Run from the repository root as a module (``-m``) so ``tests.support`` is importable. Compare
figures within one run: the machine is shared and drifts between runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import uvloop

from acmegate.testkit.apple_ca import AttestationCA
from bench import floor as crypto_floor
from bench import processes
from bench.gateway import POSTGRES, Gateway, running_gateway
from bench.load import Load, Material, Results, precompute
from bench.monitor import Monitor

RESULTS = Path(__file__).resolve().parent / "results"
CA_KEY_TYPE = "ec-p256"  # what tests.support.gateway.gateway_config creates


@dataclasses.dataclass(frozen=True)
class Plan:
    """What to run: the phases of one gateway."""

    concurrency: int
    devices: int
    warmup: int
    rates: tuple[float, ...]
    duration: float
    profile: Path | None
    native: bool
    profile_rate: int
    perf: bool
    count_sql: bool
    unacked: bool

    def phases(self) -> list[tuple[str, int]]:
        """(label, devices) per measured phase: the closed loop (unless ``devices`` is 0),
        then one open-loop phase per rate."""
        closed = [(f"closed {self.concurrency}", self.devices)] if self.devices else []
        # Enough devices for the Poisson arrivals to exceed the mean by far.
        return closed + [(f"open {r:g}/s", int(r * self.duration * 1.3) + 50) for r in self.rates]


async def commits(database: str) -> int:
    """Transactions committed or rolled back in ``database`` so far."""
    connection = await asyncpg.connect(POSTGRES)
    try:
        await connection.execute("SELECT pg_stat_clear_snapshot()")
        value = await connection.fetchval(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1",
            database,
        )
        return int(value)
    finally:
        await connection.close()


async def snapshot_counts(gateway: Gateway, folder: Path, n: int) -> dict[str, dict[str, Any]]:
    """Ask every instrumented process for its counts (SIGUSR1) and read them back."""
    await gateway.signal(signal.SIGUSR1)
    found: dict[str, dict[str, Any]] = {}
    for _ in range(100):
        found = {}
        for service in gateway.services:
            path = folder / f"counts.{service.pid}.{n}.json"
            if path.exists():
                with contextlib.suppress(ValueError):
                    found[service.name] = json.loads(path.read_text())
        if len(found) == len(gateway.services):
            return found
        await asyncio.sleep(0.1)
    raise RuntimeError(f"counts missing from {set(s.name for s in gateway.services) - set(found)}")


def count_difference(
    before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]], enrollments: int
) -> dict[str, Any]:
    """Statements and bus messages per enrollment, per process, most frequent first."""
    report: dict[str, Any] = {}
    for name, late in after.items():
        early = before.get(name, {})
        entry: dict[str, Any] = {}
        for kind in ("statements", "messages"):
            diff = Counter(late.get(kind, {})) - Counter(early.get(kind, {}))
            entry[f"{kind}_per_enrollment"] = round(sum(diff.values()) / enrollments, 2)
            entry[kind] = {key: round(value / enrollments, 3) for key, value in diff.most_common()}
        waited = Counter(late.get("waited_seconds", {})) - Counter(early.get("waited_seconds", {}))
        entry["statement_wait_ms_per_enrollment"] = {
            key: round(value * 1000 / enrollments, 3) for key, value in waited.most_common(15)
        }
        report[name] = entry
    return report


async def measure(
    gateway: Gateway,
    load: Load,
    materials: list[Material],
    plan: Plan,
    label: str,
    counts: Path | None,
) -> dict[str, Any]:
    """One measured phase with everything accounted around it."""
    rabbit = processes.rabbitmq_pids()
    pg_shared = processes.postgres_shared_pids()
    # Broker and server idle rates (other users of the shared services included).
    rabbit_idle = await processes.idle_rate(rabbit, 2.0)
    pg_shared_idle = await processes.idle_rate(pg_shared, 1.0)
    backends = processes.Meter(await processes.backend_pids(POSTGRES, gateway.database))
    per_process = {s.name: processes.Meter([s.pid]) for s in gateway.services}
    meters = {
        "gateway": processes.Meter(gateway.pids),
        "rabbitmq": processes.Meter(rabbit),
        "postgres_shared": processes.Meter(pg_shared),
    }
    before_counts = await snapshot_counts(gateway, counts, 1) if counts else {}
    commits_before = await commits(gateway.database)
    if plan.profile is not None:
        await gateway.start_profilers(
            plan.profile,
            native=plan.native,
            rate=plan.profile_rate,
            perf=plan.perf,
            postgres=backends.pids,
        )
    monitor = Monitor(gateway, unacked=plan.unacked)
    await monitor.start()
    for meter in [backends, *meters.values(), *per_process.values()]:
        meter.start()
    machine_before = processes.machine_busy_seconds()
    load_before = time.process_time()
    began = time.perf_counter()

    results: Results
    if label.startswith("open"):
        rate = float(label.split()[1].removesuffix("/s"))
        results = await load.open_loop(materials, rate, plan.duration)
    else:
        results = await load.closed_loop(materials, plan.concurrency)

    wall = time.perf_counter() - began
    load_cpu = time.process_time() - load_before
    machine = processes.machine_busy_seconds() - machine_before
    backends.stop(await processes.backend_pids(POSTGRES, gateway.database))
    for meter in [*meters.values(), *per_process.values()]:
        meter.stop()
    await monitor.stop()
    if plan.profile is not None:
        await gateway.stop_profilers()
    transactions = await commits(gateway.database) - commits_before
    after_counts = await snapshot_counts(gateway, counts, 2) if counts else {}

    ok = max(results.ok, 1)

    def per(seconds: float) -> float:
        return round(seconds * 1000 / ok, 2)

    rabbit_net = meters["rabbitmq"].seconds - rabbit_idle * wall
    pg_shared_net = meters["postgres_shared"].seconds - pg_shared_idle * wall
    accounted = (
        meters["gateway"].seconds
        + load_cpu
        + backends.seconds
        + meters["rabbitmq"].seconds
        + meters["postgres_shared"].seconds
    )
    summary: dict[str, Any] = {"phase": label, **results.summary()}
    summary["sql_transactions_per_enrollment"] = round(transactions / ok, 2)
    summary["cpu_ms_per_enrollment"] = {
        "gateway": per(meters["gateway"].seconds),
        "load_generator": per(load_cpu),
        "load_generator_device_crypto": per(results.device_seconds),
        "postgres_backends": per(backends.seconds),
        "postgres_shared_net_of_idle": per(pg_shared_net),
        "rabbitmq_net_of_idle": per(rabbit_net),
        "rabbitmq_raw": per(meters["rabbitmq"].seconds),
        "rest_of_machine": per(machine - accounted),
        "machine": per(machine),
    }
    summary["gateway_cpu_ms_per_enrollment_by_process"] = {
        name: per(meter.seconds) for name, meter in per_process.items()
    }
    summary["machine_busy_share"] = round(machine / wall / (os.cpu_count() or 1), 3)
    summary["idle_rates_cpu_per_second"] = {
        "rabbitmq": round(rabbit_idle, 3),
        "postgres_shared": round(pg_shared_idle, 3),
    }
    summary["monitor"] = monitor.summary()
    if counts:
        summary["counts"] = count_difference(before_counts, after_counts, ok)
    return summary


async def one_gateway(
    mode: str, replicas: int, plan: Plan, ca: AttestationCA, floor: crypto_floor.Floor
) -> dict[str, Any]:
    """Start one gateway, warm it up, measure every phase of ``plan``."""
    phases = plan.phases()
    total = plan.warmup + sum(n for _, n in phases)
    serials = [f"BENCH{i:06d}" for i in range(total)]
    precompute_began = time.process_time()
    materials = precompute(serials)
    precompute_ms = (time.process_time() - precompute_began) * 1000 / total
    runs: list[dict[str, Any]] = []
    names: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        counts = Path(tmp) / "counts" if plan.count_sql else None
        if counts is not None:
            counts.mkdir()
        async with running_gateway(
            mode,
            Path(tmp),
            ca,
            devices=total,
            replicas=replicas,
            counts=counts / "counts" if counts else None,
        ) as gateway:
            names = [service.name for service in gateway.services]
            async with Load(gateway.files.directory_url, ca) as load:
                await load.closed_loop(materials[: plan.warmup], plan.concurrency)
                start = plan.warmup
                for label, n in phases:
                    batch = materials[start : start + n]
                    start += n
                    summary = await measure(gateway, load, batch, plan, label, counts)
                    gateway_ms = summary["cpu_ms_per_enrollment"]["gateway"]
                    jws = summary["signed_requests_per_enrollment"]
                    phase_floor = dataclasses.replace(floor, jws_per_enrollment=jws)
                    summary["crypto_floor"] = phase_floor.as_dict()
                    summary["floor_over_gateway_cpu"] = (
                        round(phase_floor.ms_per_enrollment / gateway_ms, 3) if gateway_ms else 0
                    )
                    runs.append(summary)
                    print(headline(mode, replicas, summary), flush=True)
    return {
        "mode": mode,
        "replicas": replicas,
        "processes": names,
        "load_generator_precompute_ms_per_device": round(precompute_ms, 2),
        "phases": runs,
    }


def headline(mode: str, replicas: int, s: dict[str, Any]) -> str:
    """One line per phase for the terminal."""
    cpu = s["cpu_ms_per_enrollment"]
    lat = s["latency_ms"]
    return (
        f"{mode} x{replicas} {s['phase']}: {s['enrollments_per_second']}/s "
        f"ok={s['ok']} failed={s['failed']} p50/p99={lat.get('p50')}/{lat.get('p99')} ms "
        f"gateway={cpu['gateway']} load={cpu['load_generator']} pg={cpu['postgres_backends']} "
        f"rabbit={cpu['rabbitmq_net_of_idle']} rest={cpu['rest_of_machine']} ms/enr "
        f"sql_tx={s['sql_transactions_per_enrollment']} floor/gw={s['floor_over_gateway_cpu']}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--mode", choices=["standalone", "distributed", "both", "scaleout"], default="both"
    )
    parser.add_argument(
        "--devices", type=int, default=1500, help="closed loop: enrollments (0: no closed loop)"
    )
    parser.add_argument("--concurrency", type=int, default=64, help="closed loop: in flight")
    parser.add_argument("--warmup", type=int, default=150)
    parser.add_argument(
        "--rate", default="", help="open-loop phases after the closed loop: arrivals/s, a,b,…"
    )
    parser.add_argument("--duration", type=float, default=20.0, help="open loop: seconds")
    parser.add_argument("--replicas", type=int, default=1, help="distributed: replicas")
    parser.add_argument("--profile", type=Path, help="py-spy raw profiles into this folder")
    parser.add_argument("--native", action="store_true", help="py-spy --native")
    parser.add_argument("--profile-rate", type=int, default=200, help="samples/s")
    parser.add_argument("--perf", action="store_true", help="with --profile: perf record too")
    parser.add_argument("--count-sql", action="store_true", help="count statements and hops")
    parser.add_argument(
        "--unacked", action="store_true", help="sample ready+unacked per queue (rabbitmqctl)"
    )
    args = parser.parse_args()
    plan = Plan(
        concurrency=args.concurrency,
        devices=args.devices,
        warmup=args.warmup,
        rates=tuple(float(r) for r in args.rate.split(",") if r),
        duration=args.duration,
        profile=args.profile.resolve() if args.profile else None,
        native=args.native,
        profile_rate=args.profile_rate,
        perf=args.perf,
        count_sql=args.count_sql,
        unacked=args.unacked,
    )
    if plan.profile is not None:
        plan.profile.mkdir(parents=True, exist_ok=True)
    gateways = {
        "standalone": [("standalone", 1)],
        "distributed": [("distributed", args.replicas)],
        "both": [("standalone", 1), ("distributed", args.replicas)],
        "scaleout": [("distributed", 1), ("distributed", 2)],
    }[args.mode]
    # The floor first, in this process, before any gateway runs (its JWS count comes later).
    floor = crypto_floor.measure(0, ca_key_type=CA_KEY_TYPE)
    ca = AttestationCA.generate()
    runs = [await one_gateway(mode, n, plan, ca, floor) for mode, n in gateways]
    report: dict[str, Any] = {
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "crypto_floor_per_operation": floor.as_dict(),
        "runs": runs,
    }
    if len(runs) == 2:
        report["second_over_first_enrollments_per_second"] = [
            round(b["enrollments_per_second"] / a["enrollments_per_second"], 2)
            if a["enrollments_per_second"]
            else 0
            for a, b in zip(runs[0]["phases"], runs[1]["phases"], strict=True)
        ]
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"enroll-{args.mode}-{report['at'].replace(':', '')}.json"
    path.write_text(json.dumps(report, indent=1))
    for run in runs:
        for phase in run["phases"]:
            print(headline(run["mode"], run["replicas"], phase))
    print(f"floor per enrollment: {floor.as_dict()}; full report: {path}")


if __name__ == "__main__":
    uvloop.run(main())
