"""Enrollments with Jamf Pro as the signal source (issue #16): the fake Jamf Pro with an
injected latency per request, batched lookups on and off, against the static inventory.

    uv run --all-packages python -m bench.jamf                       # 0 and 200 ms, 600 devices
    uv run --all-packages python -m bench.jamf --latency 0,200,500 --devices 1000

One standalone gateway per variant, on a fresh database, warmed up, then a closed loop of
``--devices`` enrollments (``--concurrency`` in flight), each device a serial Jamf has never
been asked about (the passing-lookup cache does not help, as in a first rollout). The fake Jamf
runs in a process of its own (``acmegate fake-jamf``; its CPU is part of "others") and keeps
Jamf's 5-connection guidance under watch: the most concurrent requests and connections it saw
are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import uvloop
import yaml

from acmegate.testkit.apple_ca import AttestationCA
from bench import enroll
from bench.gateway import running_gateway
from bench.load import Load, precompute
from tests.support.fake_jamf import ATTRIBUTE_MAPPING, INVENTORY, jamf_source
from tests.support.gateway import free_port

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


@contextlib.asynccontextmanager
async def fake_jamf(folder: Path, devices: int) -> AsyncIterator[str]:
    """``acmegate fake-jamf`` over ``devices`` Macs, in its own process; yields its URL."""
    path = folder / "jamf-inventory.yaml"
    path.write_text(yaml.safe_dump({**INVENTORY, **jamf_inventory(devices)}))
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "acmegate.cli.main", "fake-jamf",
        "--inventory", str(path), "--port", str(port),
        stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{url}/_fake/stats") as response:
                        if response.status == 200:
                            break
                await asyncio.sleep(0.1)
        yield url
    finally:
        process.terminate()
        await process.wait()


async def control(url: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        if body is None:
            async with http.get(url + path) as response:
                return dict(await response.json())
        async with http.post(url + path, json=body) as response:
            return {} if response.status == 204 else dict(await response.json())


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
    jamf: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        async with contextlib.AsyncExitStack() as stack:
            source = None
            if latency is not None:
                url = await stack.enter_async_context(fake_jamf(folder, total))
                source = jamf_source(
                    url,
                    folder,
                    name="inventory",
                    attribute_mapping=ATTRIBUTE_MAPPING,
                    groups=["Cert-Eligible"],
                    batch_size=batch_size,
                    timeout="15s",
                )
            gateway = await stack.enter_async_context(
                running_gateway("standalone", folder, ca, devices=total, signal_source=source)
            )
            load = await stack.enter_async_context(Load(gateway.files.directory_url, ca))
            await load.closed_loop(materials[: plan.warmup], plan.concurrency)
            if source is not None:
                # Reset clears the faults too: the latency is set after it.
                await control(source["url"], "/_fake/reset", {})
                await control(source["url"], "/_fake/faults", {"delay": latency or 0.0})
            summary = await enroll.measure(
                gateway, load, materials[plan.warmup :], plan, label, None
            )
            if source is not None:
                stats = await control(source["url"], "/_fake/stats")
                jamf = stats
    summary["variant"] = label
    if jamf is not None:
        summary["jamf"] = {
            "latency_ms": round((latency or 0) * 1000),
            "batch_size": batch_size,
            "requests": jamf["requests"],
            "requests_per_enrollment": round(jamf["requests"] / max(summary["ok"], 1), 3),
            "max_in_flight": jamf["max_in_flight"],
            "max_connections": jamf["max_connections"],
            "over_limit": jamf["over_limit"],
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
