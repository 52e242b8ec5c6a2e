"""The gateway under test: its configuration, a fresh database, and its processes.

``standalone`` is one ``acmegate standalone`` process (in-process bus); ``distributed`` is
``acmegate run`` per service over RabbitMQ, with ``replicas`` processes of each of
attestation, policy and signer (one frontend). Replicas of the signer after the first do not
open the PKI listener (its port is taken by the first; the certificates still name its URLs).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import secrets
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from acmegate.testkit.apple_ca import AttestationCA
from tests.support.gateway import (
    GatewayFiles,
    Process,
    create_database,
    delete_bus_namespace,
    drop_database,
    gateway_config,
    start_command,
    stop_service,
)

POSTGRES = os.environ.get("ACMEGATE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
AMQP = os.environ.get("ACMEGATE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
SCALED = ("attestation", "policy", "signer")
# Rate limits stay on (their statements run as in production) but never bind in a benchmark.
_UNBOUNDED = {"limit": 10_000_000, "period": "1h"}


@dataclass
class Service:
    """One gateway process."""

    name: str
    """``standalone``, ``frontend``, or ``attestation-1`` …"""
    process: Process
    pump: asyncio.Task[None]
    profilers: list[asyncio.subprocess.Process] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.process.pid

    @property
    def service(self) -> str:
        """The service it runs (the name without the replica number)."""
        return self.name.rsplit("-", 1)[0]


@dataclass
class Gateway:
    """A running gateway and what the benchmark needs to know about it."""

    mode: str
    replicas: int
    files: GatewayFiles
    database_url: str
    namespace: str
    services: list[Service] = field(default_factory=list)
    profilers: list[asyncio.subprocess.Process] = field(default_factory=list)

    @property
    def database(self) -> str:
        return urlsplit(self.database_url).path.lstrip("/")

    @property
    def pids(self) -> list[int]:
        return [service.pid for service in self.services]

    async def signal(self, signum: int) -> None:
        """Send ``signum`` to every gateway process."""
        for service in self.services:
            with contextlib.suppress(ProcessLookupError):
                os.kill(service.pid, signum)

    async def start_profilers(
        self,
        folder: Path,
        *,
        native: bool,
        rate: int,
        perf: bool = False,
        postgres: Sequence[int] = (),
    ) -> None:
        """Attach ``py-spy record`` (raw collapsed stacks, ``<mode>-x<n>-<name>.txt``) to
        every gateway process, and with ``perf`` also ``perf record`` (on-CPU samples only,
        ``….perf.data``) to each and to the ``postgres`` backends together (``…-postgres``);
        the folder must exist."""
        prefix = f"{self.mode}-x{self.replicas}"
        if perf and postgres:
            pids = ",".join(str(pid) for pid in postgres)
            self.profilers.append(
                await asyncio.create_subprocess_exec(
                    *("perf", "record", "-e", "cpu-clock", "-F", str(rate), "-p", pids),
                    *("-o", str(folder / f"{prefix}-postgres.perf.data"), "--quiet"),
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )
            )
        for service in self.services:
            stem = folder / f"{self.mode}-x{self.replicas}-{service.name}"
            spy = [
                *("record", "--pid", str(service.pid), "--rate", str(rate)),
                *("--format", "raw", "--output", f"{stem}.txt"),
                # --native cannot run --nonblocking: py-spy then pauses the process per sample.
                "--native" if native else "--nonblocking",
            ]
            commands = [[py_spy(), *spy]]
            if perf:
                commands.append(
                    [
                        *("perf", "record", "-e", "cpu-clock", "-F", str(rate)),
                        *("-p", str(service.pid), "-o", f"{stem}.perf.data", "--quiet"),
                    ]
                )
            # Opened once before the measured phase: no blocking in the timed part.
            with open(f"{stem}.log", "wb") as log:  # noqa: ASYNC230
                for command in commands:
                    service.profilers.append(
                        await asyncio.create_subprocess_exec(*command, stdout=log, stderr=log)
                    )

    async def stop_profilers(self) -> None:
        """Stop every profiler (SIGINT makes py-spy and perf write their files)."""
        every = [*self.profilers, *(p for s in self.services for p in s.profilers)]
        for profiler in every:
            if profiler.returncode is None:
                profiler.send_signal(signal.SIGINT)
        for profiler in every:
            await asyncio.wait_for(profiler.wait(), 60)
        self.profilers.clear()
        for service in self.services:
            service.profilers.clear()


def py_spy() -> str:
    """The py-spy executable (``uv tool install py-spy`` puts it in ~/.local/bin)."""
    for folder in [*os.environ.get("PATH", "").split(os.pathsep), str(Path.home() / ".local/bin")]:
        candidate = Path(folder) / "py-spy"
        if candidate.exists():
            return str(candidate)
    raise RuntimeError("py-spy not found: uv tool install py-spy")


def inventory(n: int) -> list[dict[str, Any]]:
    """``n`` managed, eligible devices ``BENCH000000`` … for the static signal source."""
    return [
        {
            "serial_number": f"BENCH{i:06d}",
            "attributes": {"department": "Bench", "email": f"d{i}@example.com"},
            "groups": ["Cert-Eligible"],
        }
        for i in range(n)
    ]


def _replica_config(files: GatewayFiles) -> GatewayFiles:
    """The same configuration without the PKI listener, for signer replicas after the first."""
    config = yaml.safe_load(files.config_path.read_text())
    config["pki"]["listen"] = False
    path = files.config_path.with_name("replica.yaml")
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return dataclasses.replace(files, config_path=path)


@contextlib.asynccontextmanager
async def running_gateway(
    mode: str,
    folder: Path,
    ca: AttestationCA,
    *,
    devices: int,
    replicas: int = 1,
    counts: Path | None = None,
    signal_source: dict[str, Any] | None = None,
    prepare: Callable[[GatewayFiles], None] | None = None,
) -> AsyncIterator[Gateway]:
    """Start the gateway on a fresh database; stop it and drop the database on exit.

    ``counts`` runs every process under :mod:`bench.instrument`, writing its counts there;
    ``signal_source`` replaces the static inventory (it must be named ``inventory``).
    ``prepare`` may change the configuration before the gateway starts.
    """
    namespace = f"bench{secrets.token_hex(3)}"
    files = gateway_config(
        folder,
        ca,
        namespace=namespace,
        overrides={
            "signal_sources": [
                signal_source
                or {"name": "inventory", "type": "static", "devices": inventory(devices)}
            ],
            "logging": {"level": "warning", "json": True},
            "database": {"pool_min": 4, "pool_max": 16},
            "bus": {"namespace": namespace, "prefetch": 128},
            "rate_limits": {
                "new_accounts_per_ip": _UNBOUNDED,
                "new_orders_per_account": _UNBOUNDED,
            },
        },
    )
    if prepare is not None:
        prepare(files)
    database = await create_database(POSTGRES, "acmegate_bench_")
    env = {"ACMEGATE_DATABASE_URL": database, "ACMEGATE_AMQP_URL": AMQP}
    module = "acmegate.cli.main"
    if counts is not None:
        env["ACMEGATE_BENCH_COUNTS"] = str(counts)
        module = "bench.instrument"
    gateway = Gateway(mode, replicas, files, database, namespace)

    async def start(name: str, args: list[str]) -> None:
        process, pump = await start_command(name, args, env, wait=60, module=module)
        gateway.services.append(Service(name, process, pump))

    try:
        if mode == "standalone":
            await start("standalone", ["standalone", "--config", str(files.config_path)])
        else:
            replica = _replica_config(files)
            for name in ("signer", "policy", "attestation"):
                for n in range(1, replicas + 1):
                    config = files if n == 1 or name != "signer" else replica
                    await start(f"{name}-{n}", ["run", name, "--config", str(config.config_path)])
            # The frontend last, as in production: the pipeline is ready before requests.
            await start("frontend", ["run", "frontend", "--config", str(files.config_path)])
        yield gateway
    finally:
        await gateway.stop_profilers()
        for service in reversed(gateway.services):
            await stop_service(service.process, service.pump)
        await drop_database(POSTGRES, database)
        if mode == "distributed":
            await delete_bus_namespace(AMQP, namespace)
