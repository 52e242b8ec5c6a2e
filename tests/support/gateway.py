"""A whole gateway for end-to-end tests: its configuration, its CA, and the ways to start it.

- :func:`gateway_config` writes a configuration (YAML, as an operator would) into a folder,
  with a fresh issuing CA and the session's test Apple attestation root;
- :func:`running_gateway` starts all four services in this process (in-process bus or the real
  RabbitMQ) against a real PostgreSQL database;
- :func:`distributed_gateway` starts each service as its own ``acmegate run`` process, talking
  over the real RabbitMQ and PostgreSQL, as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import signal
import socket
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import asyncpg
import yaml

from acmegate.cli.compose import SERVICE_NAMES, Running, running
from acmegate.common.bus import AmqpBus, Bus, Queue, RpcQueue
from acmegate.common.config import Config, load_config
from acmegate.signer.setup.create import init_ca
from acmegate.testkit.apple_ca import AttestationCA, LeafClaims
from acmegate.testkit.device import EnrollmentResult, SimulatedDevice

PASSPHRASE = "correct horse battery staple"

# The static inventory every end-to-end test can rely on.
INVENTORY: list[dict[str, Any]] = [
    {
        "serial_number": "C02E2E00001",
        "udid": "00006030-000651690A84001C",
        "attributes": {
            "department": "Engineering",
            "username": "llama",
            "email": "llama@example.com",
        },
        "groups": ["Cert-Eligible"],
    },
    {
        "serial_number": "C02E2E00002",
        "attributes": {
            "department": "Engineering",
            "username": "alpaca",
            "email": "alpaca@example.com",
        },
        "groups": ["Cert-Eligible"],
    },
    {
        "serial_number": "DMQE2EPHONE",
        "udid": "00008120-001C1D8136500032",
        "attributes": {"department": "Sales", "username": "vicuna", "email": "vicuna@example.com"},
        "groups": ["Cert-Eligible"],
    },
    {"serial_number": "C02UNMANAGED", "managed": False, "groups": ["Cert-Eligible"]},
    {"serial_number": "C02NOGROUP", "groups": ["Other"]},
]


# Ports are drawn below Linux's ephemeral range (32768–60999 by default): a port the kernel
# handed out for ``bind(0)`` can be taken by any outgoing connection (to PostgreSQL, RabbitMQ)
# before the gateway binds it, which made listeners fail with EADDRINUSE now and then.
_PORT_RANGE = (20000, 32000)
_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback TCP port nobody listens on, never handed out twice in one test run."""
    while True:
        port = random.randrange(*_PORT_RANGE)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port


def edge_overrides(admin_port: int, radius_port: int, admin_token_env: str) -> dict[str, Any]:
    """``gateway_config`` overrides opening every public edge besides ACME: the admin listener
    (token from ``admin_token_env``) and the RADIUS endpoint (token in the file
    ``radius-token`` next to the configuration) with a lookup policy on the inventory."""
    return {
        "admin": {"host": "127.0.0.1", "port": admin_port, "token": {"env": admin_token_env}},
        "lookup_policies": [
            {"name": "inventory-issuance", "signal_source": "inventory"},
            {
                "name": "radius-check",
                "purpose": "radius_authentication",
                "signal_source": "inventory",
                "identity": "certificate_permanent_identifier",
            },
        ],
        "radius": {
            "enabled": True,
            "host": "127.0.0.1",
            "port": radius_port,
            "lookup_policy": "radius-check",
            "token": {"file": "radius-token"},
        },
    }


@dataclass
class GatewayFiles:
    config_path: Path
    root_pem: Path
    ca_pem: Path
    port: int
    pki_port: int = 0

    @property
    def directory_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/acme/directory"

    @property
    def pki_url(self) -> str:
        """The signer's CRL / OCSP / CA-certificate listener."""
        return f"http://127.0.0.1:{self.pki_port}"


def gateway_config(
    folder: Path,
    attestation_ca: AttestationCA,
    *,
    namespace: str = "acmegate",
    overrides: Mapping[str, Any] | None = None,
) -> GatewayFiles:
    """Write a complete gateway configuration (and its CA) into ``folder``.

    ``overrides`` replaces top-level keys (or, for mappings, merges into them).
    """
    folder.mkdir(parents=True, exist_ok=True)
    ca_dir = folder / "ca"
    if not (ca_dir / "devices.pem").exists():
        init_ca(
            ca_dir,
            name="devices",
            common_name="E2E Devices CA",
            subject=[("O", "acmegate tests")],
            key_type="ec-p256",
            hash="sha256",
            passphrase=PASSPHRASE,
        )
    (folder / "passphrase").write_text(PASSPHRASE)
    attestation_ca.save(folder / "attestation-ca")
    port = free_port()
    pki_port = free_port()
    config: dict[str, Any] = {
        "server": {
            "host": "127.0.0.1",
            "port": port,
            "external_url": f"http://127.0.0.1:{port}",
            "finalize_wait": "5s",
            "challenge_wait": "5s",
        },
        # The signer's CRL / OCSP listener; certificates name it in their CDP and AIA.
        "pki": {
            "host": "127.0.0.1",
            "port": pki_port,
            "base_url": f"http://127.0.0.1:{pki_port}",
            "crl_check_interval": "1s",
        },
        "bus": {"namespace": namespace, "max_deliveries": 4, "prefetch": 32},
        "acme": {"sweep_interval": "1s", "republish_after": "3s", "processing_budget": "60s"},
        "logging": {"level": "warning", "json": True},
        "attestation_providers": [
            {"name": "apple", "type": "apple", "roots": ["attestation-ca/root.pem"]}
        ],
        "certificate_authorities": [
            {
                "name": "devices",
                "certificate": "ca/devices.pem",
                "chain": ["ca/root.pem"],
                "key": {
                    "type": "file",
                    "path": "ca/devices.key",
                    "passphrase": {"file": "passphrase"},
                },
            }
        ],
        "certificate_templates": [
            {
                "name": "device",
                "subject": (
                    "CN=${/csr/subject/commonname},O=acmegate tests,OU=${/source/department}"
                ),
                "san": {
                    "permanent_identifier": ["${/device/serialnumber}"],
                    "rfc822": ["${/source/email}"],
                    "dns": ["${/csr/san/dnsname}"],
                    "other_name": ["${/csr/san/othername}"],
                },
                # What the device writes reaches the certificate only if the gateway can
                # vouch for it (the form the shipped examples use).
                "csr_rules": {
                    "/csr/san/dnsname": {"matches": r"^${/device/serialnumber}\.corp\.example$"},
                    "/csr/san/othername": {"equals": "${/source/email}"},
                },
                "validity": "30d",
                "extended_key_usage": ["client_auth"],
            }
        ],
        "signal_sources": [{"name": "inventory", "type": "static", "devices": INVENTORY}],
        "lookup_policies": [
            {
                "name": "inventory-issuance",
                "signal_source": "inventory",
                "identity": "attested_serial",
            }
        ],
        "policy_workflows": [
            {
                "name": "managed-devices",
                "conditions": {"lookup_policy": "inventory-issuance", "groups": ["Cert-Eligible"]},
            }
        ],
        "device_roles": [
            {"name": "attested-apple", "conditions": {"attestation_provider": "apple"}}
        ],
        "enrollment_policies": [
            {
                "name": "managed-apple-devices",
                "role": "managed-devices",
                "device_role": "attested-apple",
                "certificate_authority": "devices",
                "certificate_template": "device",
            }
        ],
    }
    for key, value in (overrides or {}).items():
        if isinstance(value, Mapping) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    path = folder / "acmegate.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return GatewayFiles(path, ca_dir / "root.pem", ca_dir / "devices.pem", port, pki_port)


@dataclass
class Gateway:
    files: GatewayFiles
    config: Config
    running: Running
    pool: asyncpg.Pool

    @property
    def directory_url(self) -> str:
        return self.files.directory_url


@contextlib.asynccontextmanager
async def running_gateway(
    files: GatewayFiles, database_url: str, *, amqp_url: str | None = None
) -> AsyncIterator[Gateway]:
    """All four services in this process; the real broker if ``amqp_url`` is given."""
    config = load_config(files.config_path)
    bus: Bus | None = None
    if amqp_url is not None:
        bus = AmqpBus(amqp_url, namespace=config.bus.namespace, max_deliveries=4)
    async with running(
        config, SERVICE_NAMES, database=database_url, bus=bus, in_process=amqp_url is None
    ) as state:
        pool = state.runtime.require_pool()
        yield Gateway(files, config, state, pool)


@dataclass
class Process:
    name: str
    process: asyncio.subprocess.Process
    output: list[str] = field(default_factory=list)


async def _pump(proc: Process, ready: asyncio.Event) -> None:
    assert proc.process.stdout is not None
    async for raw in proc.process.stdout:
        line = raw.decode(errors="replace").rstrip()
        proc.output.append(line)
        if "is running" in line:
            ready.set()


async def start_service(
    name: str,
    files: GatewayFiles,
    env: Mapping[str, str],
    *,
    wait: float = 30,
    extra: Sequence[str] = (),
) -> tuple[Process, asyncio.Task[None]]:
    """``acmegate run <name>`` as a child process; returns once it says it is running."""
    return await start_command(
        name, ["run", name, "--config", str(files.config_path), *extra], env, wait=wait
    )


async def start_command(
    name: str,
    args: Sequence[str],
    env: Mapping[str, str],
    *,
    wait: float = 30,
    module: str = "acmegate.cli.main",
) -> tuple[Process, asyncio.Task[None]]:
    """``python -m <module> <args>`` as a child process called ``name``; returns once it says
    it is running (``run`` and ``standalone`` both print "is running")."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **env},
    )
    proc = Process(name, process)
    ready = asyncio.Event()
    pump = asyncio.create_task(_pump(proc, ready))
    try:
        await asyncio.wait_for(ready.wait(), wait)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise RuntimeError(f"{name} did not start:\n" + "\n".join(proc.output[-40:])) from None
    return proc, pump


async def stop_service(proc: Process, pump: asyncio.Task[None], *, kill: bool = False) -> None:
    if proc.process.returncode is None:
        proc.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.process.wait(), 15)
        except TimeoutError:
            proc.process.kill()
            await proc.process.wait()
    pump.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await pump


async def create_database(server_url: str, prefix: str) -> str:
    """A fresh, empty database ``<prefix><random>`` on the server; its URL."""
    name = f"{prefix}{secrets.token_hex(6)}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


async def drop_database(server_url: str, database_url: str) -> None:
    """Drop the database ``database_url`` names (its connections closed by force)."""
    name = urlsplit(database_url).path.lstrip("/")
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def delete_bus_namespace(amqp_url: str, namespace: str) -> None:
    """Delete every queue and exchange a gateway declares under ``namespace`` on the broker."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        for queue in Queue:
            for suffix in ("", ".dead"):
                await channel.queue_delete(f"{namespace}.{queue}{suffix}")
        for rpc_queue in RpcQueue:
            await channel.queue_delete(f"{namespace}.{rpc_queue}")
        await channel.exchange_delete(f"{namespace}.dead-letter")
        await channel.exchange_delete(f"{namespace}.notify")
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def distributed_gateway(
    files: GatewayFiles, database_url: str, amqp_url: str
) -> AsyncIterator[dict[str, tuple[Process, asyncio.Task[None]]]]:
    """Each service its own process, over the real RabbitMQ and PostgreSQL."""
    env = {"ACMEGATE_DATABASE_URL": database_url, "ACMEGATE_AMQP_URL": amqp_url}
    started: dict[str, tuple[Process, asyncio.Task[None]]] = {}
    try:
        # The frontend last, as in production: the pipeline is ready before requests arrive.
        for name in ("signer", "policy", "attestation", "frontend"):
            started[name] = await start_service(name, files, env)
        yield started
    finally:
        for proc, pump in reversed(list(started.values())):
            await stop_service(proc, pump)


async def enroll(
    files: GatewayFiles, ca: AttestationCA, serial: str, *, poll_timeout: float = 60
) -> EnrollmentResult:
    """One simulated Mac with ``serial`` enrolls through the gateway's ACME directory."""
    device = SimulatedDevice(
        files.directory_url, serial, LeafClaims.macos(serial), ca, poll_timeout=poll_timeout
    )
    try:
        return await device.enroll()
    finally:
        await device.close()


async def issued_and_delivered(database_url: str) -> tuple[int, int]:
    """How many certificates the signer issued and the frontend delivered (once each, or not)."""
    connection = await asyncpg.connect(database_url)
    try:
        issued = await connection.fetchval("SELECT count(*) FROM pki.certificates")
        delivered = await connection.fetchval("SELECT count(*) FROM acme.certificates")
        return int(issued), int(delivered)
    finally:
        await connection.close()


__all__ = [
    "SERVICE_NAMES",
    "Gateway",
    "GatewayFiles",
    "create_database",
    "delete_bus_namespace",
    "distributed_gateway",
    "drop_database",
    "edge_overrides",
    "enroll",
    "gateway_config",
    "issued_and_delivered",
    "running_gateway",
    "start_command",
    "start_service",
    "stop_service",
]
