"""Where each gateway process spends its CPU, from the py-spy profiles of a benchmark run.

    uv run --all-packages python -m bench.flame bench/results/enroll-….json PROFILE_DIR

``bench.enroll --profile PROFILE_DIR [--native] [--perf]`` attaches ``py-spy record --format
raw`` (and ``perf record -e cpu-clock``) to every gateway process for the measured phase. py-spy
counts a thread that is runnable but waiting for a core as busy: on a loaded machine a process
preempted right after it woke another one (a ``write`` to a loopback socket wakes PostgreSQL,
which then takes the core) collects samples in that system call while it does not run. perf
samples only what runs on a core, so with ``--perf`` the py-spy samples whose innermost frame is
in libc (system calls) are rescaled to perf's share of the kernel and libc, the others to the
rest. Shares become milliseconds with the process's CPU per enrollment measured from ``/proc``
in the same phase (the result JSON).

Printed per process (Markdown): the layers (the innermost frame of a known library or of
acmegate decides: time in ``re`` or ``hashlib`` called by acmegate is acmegate's), the
functions with the most self time, and the acmegate functions with the most inclusive time.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

# (layer, path prefixes of the frame's file as py-spy shortens it, e.g. "aiohttp/web.py").
_LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("crypto (cryptography, OpenSSL)", ("cryptography/", "libcrypto", "_rust.abi3", "libssl")),
    ("asyncpg (PostgreSQL client)", ("asyncpg/",)),
    ("AMQP client (aio-pika, aiormq, pamqp)", ("aio_pika/", "aiormq/", "pamqp/")),
    ("HTTP (aiohttp, multidict, yarl)", ("aiohttp/", "multidict/", "yarl/", "_http_parser")),
    ("event loop (uvloop, asyncio)", ("uvloop/", "asyncio/", "loop.cpython")),
    ("logging (structlog, logging)", ("structlog/", "logging/")),
    ("encoding (msgspec, json, cbor2, pyasn1)", ("msgspec/", "json/", "cbor2/", "pyasn1")),
    (
        "acmegate",
        ("frontend/", "attestation/", "policy/", "signer/", "common/", "cli/", "testkit/"),
    ),
]
_UNKNOWN = "other (stdlib, interpreter)"


def parse(path: Path) -> list[tuple[list[tuple[str, str]], int]]:
    """(frames outermost first as (function, file), count) per line of a raw py-spy file."""
    stacks = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        text, _, count = line.rpartition(" ")
        frames = []
        for raw in text.split(";"):
            match = _FRAME.match(raw)
            if match is None:
                frames.append((raw, ""))
            else:
                frames.append((match["function"], match["file"]))
        stacks.append((frames, int(count)))
    return stacks


def layer(file: str) -> str | None:
    """The layer a frame's file belongs to, ``None`` for stdlib and the interpreter."""
    for name, prefixes in _LAYERS:
        if any(file.startswith(p) or p in file for p in prefixes):
            return name
    return None


_DSO_LAYERS = [
    ("kernel (system calls, loopback TCP, scheduler)", ("[kernel",)),
    ("libc", ("libc.so",)),
    ("crypto (cryptography, OpenSSL)", ("_rust.abi3", "libcrypto", "libssl")),
    ("interpreter (every Python frame: acmegate, aiohttp, asyncio, …)", ("libpython",)),
    ("asyncpg protocol (Cython)", ("protocol.cpython", "pgproto")),
    ("uvloop (Cython, libuv)", ("loop.cpython",)),
    ("aiohttp/multidict/yarl C parts", ("_http_parser", "_multidict", "_quoting", "_helpers")),
    ("msgspec", ("_core.cpython",)),
]


def perf_shares(path: Path, *, symbols: bool = False) -> dict[str, float]:
    """On-CPU share per layer from ``perf report --sort dso`` of a perf.data file; with
    ``symbols``, per library and symbol as perf names them."""
    sort = "dso,sym" if symbols else "dso"
    output = subprocess.run(
        ["perf", "report", "-i", str(path), "--sort", sort, "--stdio", "-q"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    shares: Counter[str] = Counter()
    for line in output.splitlines():
        parts = line.split()
        if len(parts) < 2 or not parts[0].endswith("%"):
            continue
        if symbols:
            shares[" ".join(parts[1:])] += float(parts[0].rstrip("%")) / 100
            continue
        dso = parts[1]
        name = next((n for n, keys in _DSO_LAYERS if any(k in dso for k in keys)), None)
        shares[name or f"other ({dso})"] += float(parts[0].rstrip("%")) / 100
    return dict(shares.most_common())


def _syscall_leaf(frames: list[tuple[str, str]]) -> bool:
    return "libc.so" in frames[-1][1]


def analyse(path: Path, cpu_ms: float, top: int) -> dict[str, Any]:
    """Layers, self and inclusive tops of one profile, in ms per enrollment."""
    stacks = parse(path)
    total = sum(count for _, count in stacks) or 1
    perf = path.with_suffix(".perf.data")
    on_cpu = perf_shares(perf) if perf.exists() else {}
    weight = {True: 1.0, False: 1.0}
    if on_cpu:
        in_libc = sum(c for frames, c in stacks if _syscall_leaf(frames)) / total
        kernel = sum(v for k, v in on_cpu.items() if k.startswith(("kernel", "libc")))
        if 0 < in_libc < 1:
            weight = {True: kernel / in_libc, False: (1 - kernel) / (1 - in_libc)}
    layers: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, count in stacks:
        weighted = count * weight[_syscall_leaf(frames)]
        found = next((layer(f) for _, f in reversed(frames) if layer(f)), None)
        layers[found or _UNKNOWN] += weighted
        function, file = frames[-1]
        own[f"{function} ({file})"] += weighted
        seen = {f"{fn} ({fl})" for fn, fl in frames if layer(fl) == "acmegate"}
        for name in seen:
            inclusive[name] += weighted

    def ms(count: float) -> float:
        return round(count / total * cpu_ms, 3)

    return {
        "samples": total,
        "cpu_ms_per_enrollment": cpu_ms,
        "on_cpu_by_library_perf": {k: round(v * cpu_ms, 3) for k, v in on_cpu.items()},
        "layers": {name: ms(c) for name, c in layers.most_common()},
        "self": {name: ms(c) for name, c in own.most_common(top)},
        "acmegate_inclusive": {name: ms(c) for name, c in inclusive.most_common(top)},
    }


def markdown(name: str, report: dict[str, Any]) -> str:
    """One process's report as Markdown tables."""
    lines = [
        f"### {name}: {report['cpu_ms_per_enrollment']} ms CPU per enrollment "
        f"({report['samples']} samples)",
        "",
    ]
    if report["on_cpu_by_library_perf"]:
        lines += ["| on a core (perf), by library | ms / enrollment |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in report["on_cpu_by_library_perf"].items()]
        lines.append("")
    lines += ["| layer (py-spy) | ms / enrollment |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in report["layers"].items()]
    for title, key in (("self time", "self"), ("acmegate, inclusive", "acmegate_inclusive")):
        lines += ["", f"| {title} | ms / enrollment |", "|---|---|"]
        lines += [f"| `{k}` | {v} |" for k, v in report[key].items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("result", type=Path, help="the bench.enroll JSON of the profiled run")
    parser.add_argument("profiles", type=Path, help="the --profile folder")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write the analysis here")
    args = parser.parse_args()
    result = json.loads(args.result.read_text())
    analysis: dict[str, Any] = {}
    for run in result["runs"]:
        phase = run["phases"][-1]
        prefix = f"{run['mode']}-x{run['replicas']}"
        for name, cpu in phase["gateway_cpu_ms_per_enrollment_by_process"].items():
            path = args.profiles / f"{prefix}-{name}.txt"
            if not path.exists():
                continue
            report = analyse(path, cpu, args.top)
            analysis[f"{prefix}-{name}"] = report
            print(markdown(f"{prefix} {name}", report))
        postgres = args.profiles / f"{prefix}-postgres.perf.data"
        if postgres.exists():
            cpu = phase["cpu_ms_per_enrollment"]["postgres_backends"]
            shares = perf_shares(postgres, symbols=True)
            analysis[f"{prefix}-postgres"] = {k: round(v * cpu, 3) for k, v in shares.items()}
            print(f"### {prefix} PostgreSQL backends: {cpu} ms CPU per enrollment\n")
            print("| on a core (perf), by library and symbol | ms / enrollment |\n|---|---|")
            for key, value in list(analysis[f"{prefix}-postgres"].items())[: args.top]:
                print(f"| `{key}` | {value} |")
            print()
    if args.json:
        args.json.write_text(json.dumps(analysis, indent=1))


if __name__ == "__main__":
    main()
