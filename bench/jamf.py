"""Enrollments with Jamf Pro as the signal source (issue #16): the fake Jamf Pro with an
injected latency per request, batched lookups on and off, against the static inventory.

    uv run --all-packages python -m bench.jamf                       # 0 and 200 ms, 600 devices
    uv run --all-packages python -m bench.jamf --latency 0,200,500 --devices 1000

One standalone gateway per variant, on a fresh database, warmed up, then a closed loop of
``--devices`` enrollments (``--concurrency`` in flight), each device a serial Jamf has never
been asked about (the passing-lookup cache does not help, as in a first rollout). The fake Jamf
runs in this process (its CPU counts as the load generator's) and keeps Jamf's 5-connection
guidance under watch: the most concurrent requests and connections it saw are reported.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop

from acmegate.testkit.apple_ca import AttestationCA
from acmegate.testkit.fakejamf import FakeJamf
from bench import enroll
from bench.gateway import running_gateway
from bench.load import Load, precompute
from tests.support.fake_jamf import ATTRIBUTE_MAPPING, jamf_source, new_fake

RESULTS = Path(__file__).parent / "results"


def jamf_inventory(n: int) -> dict[str, Any]:
    """``n`` managed Macs ``BENCH000000`` … in the Cert-Eligible group."""
    return {
        "computers": [
            {
                "id": str(i + 1),
                "serial_number": f"BENCH{i:06d}",
                "udid": f"00006030-BENCH{i:011d}",
                "email": f"d{i}@example.com",
                "department_id": "1",
                "groups": ["Cert-Eligible"],
            }
            for i in range(n)
        ],
    }


async def variant(
    label: str,
    latency: float | None,
    batch_size: int,
    plan: enroll.Plan,
    ca: AttestationCA,
) -> dict[str, Any]:
    """One gateway: static inventory (``latency`` None) or the fake Jamf."""
    total = plan.warmup + plan.devices
    materials = precompute([f"BENCH{i:06d}" for i in range(total)])
    fake: FakeJamf | None = None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = None
        if latency is not None:
            fake = new_fake(jamf_inventory(total))
            await fake.start()
            source = jamf_source(
                fake.url,
                folder,
                name="inventory",
                attribute_mapping=ATTRIBUTE_MAPPING,
                groups=["Cert-Eligible"],
                batch_size=batch_size,
                timeout="15s",
            )
        try:
            async with running_gateway(
                "standalone", folder, ca, devices=total, signal_source=source
            ) as gateway:
                async with Load(gateway.files.directory_url, ca) as load:
                    await load.closed_loop(materials[: plan.warmup], plan.concurrency)
                    if fake is not None:
                        fake.faults.delay = latency or 0.0
                        fake.reset_stats()
                    summary = await enroll.measure(
                        gateway, load, materials[plan.warmup :], plan, label, None
                    )
        finally:
            if fake is not None:
                await fake.stop()
    summary["variant"] = label
    if fake is not None:
        stats = fake.stats
        summary["jamf"] = {
            "latency_ms": round((latency or 0) * 1000),
            "batch_size": batch_size,
            "requests": len(stats.requests),
            "requests_per_enrollment": round(len(stats.requests) / max(summary["ok"], 1), 3),
            "max_in_flight": stats.max_in_flight,
            "max_connections": stats.max_connections,
            "over_limit": stats.over_limit,
        }
    line = (
        f"{label}: {summary['enrollments_per_second']}/s ok={summary['ok']} "
        f"failed={summary['failed']} p50/p99={summary['latency_ms'].get('p50')}/"
        f"{summary['latency_ms'].get('p99')} ms"
    )
    if "jamf" in summary:
        jamf = summary["jamf"]
        line += (
            f" jamf_requests={jamf['requests']} in_flight_max={jamf['max_in_flight']} "
            f"connections_max={jamf['max_connections']}"
        )
    print(line, flush=True)
    return summary


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=600, help="closed loop: enrollments")
    parser.add_argument("--concurrency", type=int, default=64, help="closed loop: in flight")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--latency", default="0,200", help="Jamf latencies in ms, a,b,…")
    parser.add_argument("--batch-size", type=int, default=100, help="batched variants' size")
    args = parser.parse_args()
    plan = enroll.Plan(
        concurrency=args.concurrency,
        devices=args.devices,
        warmup=args.warmup,
        rates=(),
        duration=0.0,
        profile=None,
        native=False,
        profile_rate=0,
        perf=False,
        count_sql=False,
        unacked=False,
    )
    ca = AttestationCA.generate()
    variants: list[tuple[str, float | None, int]] = [("static inventory", None, 0)]
    for ms in (float(x) for x in args.latency.split(",") if x):
        variants.append((f"jamf {ms:g} ms batched", ms / 1000, args.batch_size))
        variants.append((f"jamf {ms:g} ms batching off", ms / 1000, 0))
    # The machine is shared: the static inventory again at the end brackets the drift.
    variants.append(("static inventory (again)", None, 0))
    runs = [await variant(label, lat, size, plan, ca) for label, lat, size in variants]
    # "vs static": against the mean of the two static runs.
    static = (runs[0]["enrollments_per_second"] + runs[-1]["enrollments_per_second"]) / 2 or 1
    print("\n| variant | enrollments/s | vs static | p50 ms | p99 ms | Jamf requests |", end="")
    print(" max in flight | gateway CPU ms/enr | others' CPU ms/enr |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for run in runs:
        jamf = run.get("jamf", {})
        cpu = run["cpu_ms_per_enrollment"]
        print(
            f"| {run['variant']} | {run['enrollments_per_second']} | "
            f"{run['enrollments_per_second'] / static:.0%} | {run['latency_ms'].get('p50')} | "
            f"{run['latency_ms'].get('p99')} | {jamf.get('requests', '–')} | "
            f"{jamf.get('max_in_flight', '–')} | {cpu['gateway']} | {cpu['rest_of_machine']} |"
        )
    report = {
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "args": vars(args),
        "runs": runs,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"jamf-{report['at'].replace(':', '')}.json"
    path.write_text(json.dumps(report, indent=1))
    print(f"full report: {path}")


if __name__ == "__main__":
    uvloop.run(main())
