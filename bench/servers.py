"""Server certificates side by side: the same http-01 workload against acmegate, pebble and
acme2certifier on this machine, in one run.

Each certificate is what a server's ACME client does the first time (RFC 8555 §7): a new
account, an order for the ``ip`` identifier 127.0.0.1 (RFC 8738; no DNS on any side), the
http-01 challenge answered by this load generator's own responder on ``--http-port`` (port 80
by default: acme2certifier validates there only, so all three do), finalize with a fresh
P-256 CSR, the certificate downloaded. Account keys and CSRs are made before the clock
starts. ``--concurrency`` certificates are in flight at a time.

Per server: certificates/s, latency percentiles, and CPU ms per certificate of the server's
processes (acmegate: the standalone process plus its PostgreSQL backends; pebble: in memory;
acme2certifier: its WSGI process with SQLite), of the load generator, and of the rest of the
machine (the noise figure, as in bench/enroll.py).

acme2certifier is not a dependency of this project: install it into a virtual environment of
its own and name its Python (see bench/README.md)::

    uv venv /tmp/a2c && uv pip install --python /tmp/a2c/bin/python acme2certifier
    uv run --all-packages python -m bench.servers --a2c-python /tmp/a2c/bin/python
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime
import ipaddress
import json
import os
import ssl
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from acmegate.testkit.acme_session import AcmeSession
from acmegate.testkit.apple_ca import AttestationCA
from acmegate.testkit.jws import JwsSigner
from bench.gateway import POSTGRES
from bench.gateway import running_gateway as running_acmegate
from bench.load import percentiles
from bench.processes import backend_pids, cpu_seconds, machine_busy_seconds, total_cpu_seconds
from tests.support.gateway import GatewayFiles, free_port
from tests.support.pebble import running_pebble
from tests.support.server_certs import add_server_policy

IDENTIFIER = {"type": "ip", "value": "127.0.0.1"}
RESULTS = Path(__file__).resolve().parent / "results"
HERE = Path(__file__).resolve().parent


# -- the load generator's http-01 responder ----------------------------------------------------


class Responder:
    """Answers ``/.well-known/acme-challenge/<token>`` with its key authorization (§8.3)."""

    def __init__(self) -> None:
        self.answers: dict[str, str] = {}

    async def handle(self, request: web.Request) -> web.Response:
        answer = self.answers.get(request.match_info["token"])
        if answer is None:
            return web.Response(status=404)
        return web.Response(text=answer)

    @contextlib.asynccontextmanager
    async def serving(self, port: int) -> AsyncIterator[None]:
        app = web.Application()
        app.router.add_get("/.well-known/acme-challenge/{token}", self.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            yield
        finally:
            await runner.cleanup()


# -- one certificate ---------------------------------------------------------------------------


@dataclass
class Material:
    signer: JwsSigner
    csr_der: bytes


def precompute(n: int) -> list[Material]:
    material = []
    for _ in range(n):
        key = ec.generate_private_key(ec.SECP256R1())
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([]))
            .add_extension(san, critical=False)
            .sign(key, hashes.SHA256())
        )
        der = csr.public_bytes(serialization.Encoding.DER)
        material.append(Material(JwsSigner.generate(), der))
    return material


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def one_certificate(
    directory: str, http: aiohttp.ClientSession, responder: Responder, material: Material
) -> None:
    session = AcmeSession(directory, material.signer, http=http, poll_interval=0.05)
    # acme2certifier refuses an account without contact (malformed); all get the same one.
    await session.new_account(
        {"termsOfServiceAgreed": True, "contact": ["mailto:bench@example.test"]}
    )
    created = await session.post(await session.url_of("newOrder"), {"identifiers": [IDENTIFIER]})
    order_url, order = created.location, created.json_object()
    assert order_url is not None
    for authz_url in order["authorizations"]:
        authz = (await session.post_as_get(authz_url)).json_object()
        challenge = next(c for c in authz["challenges"] if c["type"] == "http-01")
        token = challenge["token"]
        responder.answers[token] = f"{token}.{material.signer.thumbprint}"
        await session.post(challenge["url"], {})
        done = (await session.poll(authz_url)).json_object()
        responder.answers.pop(token, None)
        if done["status"] != "valid":
            raise RuntimeError(f"authorization {done['status']}: {json.dumps(done)}")
    finalized = await session.post(order["finalize"], {"csr": b64url(material.csr_der)})
    final = await session.poll(
        order_url, first=finalized, while_status={"pending", "ready", "processing"}
    )
    body = final.json_object()
    if body["status"] != "valid":
        raise RuntimeError(f"order {body['status']}: {json.dumps(body)}")
    pem = await session.post_as_get(body["certificate"], accept="application/pem-certificate-chain")
    x509.load_pem_x509_certificate(pem.body)


# -- the servers -------------------------------------------------------------------------------


@dataclass
class Side:
    name: str
    directory: str
    pid: int
    """The server's process (all its threads)."""
    database_pids: Callable[[], Awaitable[list[int]]] | None = None
    """PostgreSQL backends serving it: part of its CPU, also shown on their own."""
    ssl_context: ssl.SSLContext | None = None
    notes: list[str] = field(default_factory=list)


@contextlib.asynccontextmanager
async def acmegate_side(folder: Path, http_port: int) -> AsyncIterator[Side]:
    def prepare(files: GatewayFiles) -> None:
        add_server_policy(files.config_path, None, validation={"http_port": http_port})

    ca = AttestationCA.generate()
    async with running_acmegate(
        "standalone", folder / "acmegate", ca, devices=1, prepare=prepare
    ) as gateway:
        database = gateway.database

        async def backends() -> list[int]:
            return await backend_pids(POSTGRES, database)

        url = gateway.files.directory_url
        yield Side("acmegate", url, gateway.services[0].pid, backends, notes=["standalone"])


@contextlib.asynccontextmanager
async def pebble_side(folder: Path, http_port: int) -> AsyncIterator[Side]:
    async with running_pebble(
        folder / "pebble", None, http_port=http_port, tls_port=free_port()
    ) as pebble:
        assert pebble.process_id is not None
        context = ssl.create_default_context(cafile=str(pebble.tls_certificate))
        yield Side("pebble", pebble.directory_url, pebble.process_id, ssl_context=context)


A2C_CONFIG = """\
[DEFAULT]
debug: False

[Nonce]
nonce_check_disable: False

[CAhandler]
handler_module: acme2certifier.cahandlers.openssl_ca_handler
issuing_ca_key: {folder}/ca.key
issuing_ca_cert: {folder}/ca.pem
root_ca: {folder}/ca.pem
issuing_ca_crl: {folder}/ca.crl
ca_cert_chain_list: ["{folder}/ca.pem"]
cert_save_path: {folder}/certs
cert_validity_days: 90

[DBhandler]
handler_module: acme2certifier.dbhandlers.wsgi_handler
dbfile: {folder}/acme_srv.db

[Certificate]
revocation_reason_check_disable: False

[Challenge]
challenge_validation_disable: False

[Order]
tnauthlist_support: False
"""


def _a2c_files(folder: Path) -> Path:
    """An EC P-256 issuing CA (with its CRL) for its openssl CA handler, and its
    configuration file."""
    (folder / "certs").mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "acme2certifier bench CA")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    (folder / "ca.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "ca.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(name)
        .last_update(now)
        .next_update(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (folder / "ca.crl").write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    config = folder / "acme_srv.cfg"
    config.write_text(A2C_CONFIG.format(folder=folder))
    return config


@contextlib.asynccontextmanager
async def a2c_side(folder: Path, python: str) -> AsyncIterator[Side]:
    config = _a2c_files(folder / "acme2certifier")
    port = free_port()
    env = {"ACME_SRV_CONFIGFILE": str(config)}
    log = (folder / "acme2certifier" / "server.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        python, str(HERE / "a2c_serve.py"), str(port),
        stdout=log, stderr=asyncio.subprocess.STDOUT, env={**os.environ, **env},
    )  # fmt: skip
    try:
        directory = f"http://127.0.0.1:{port}/directory"
        await _until_answering(directory, process)
        yield Side("acme2certifier", directory, process.pid, notes=["wsgiref, SQLite"])
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
        log.close()


async def _until_answering(url: str, process: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            if process.returncode is not None:
                break
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} never answered (exit {process.returncode})")


# -- measuring ---------------------------------------------------------------------------------


async def measure(
    side: Side, responder: Responder, material: list[Material], concurrency: int, warmup: int
) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=concurrency, ssl=side.ssl_context or True)
    async with aiohttp.ClientSession(connector=connector) as http:
        for item in material[:warmup]:
            await one_certificate(side.directory, http, responder, item)
        work = material[warmup:]
        latencies: list[float] = []
        failures: list[str] = []
        queue = iter(work)

        async def worker() -> None:
            for item in queue:
                began = time.perf_counter()
                try:
                    await one_certificate(side.directory, http, responder, item)
                except Exception as error:  # counted and reported, not fatal
                    failures.append(f"{type(error).__name__}: {error}"[:300])
                    continue
                latencies.append(time.perf_counter() - began)

        database = await side.database_pids() if side.database_pids else []
        server_before = cpu_seconds(side.pid)
        database_before = total_cpu_seconds(database)
        own_before = cpu_seconds(os.getpid())
        machine_before = machine_busy_seconds()
        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
        # Backends born during the run (new pool connections) count in full.
        born = await side.database_pids() if side.database_pids else []
        born = [pid for pid in born if pid not in database]
        database_cpu = total_cpu_seconds(database) - database_before + total_cpu_seconds(born)
        server = cpu_seconds(side.pid) - server_before + database_cpu
        own = cpu_seconds(os.getpid()) - own_before
        machine = machine_busy_seconds() - machine_before
    done = len(latencies)
    per = 1000 / max(done, 1)
    return {
        "server": side.name,
        "notes": side.notes,
        "certificates": done,
        "failures": len(failures),
        "failure_samples": failures[:3],
        "seconds": round(elapsed, 2),
        "certificates_per_s": round(done / elapsed, 1),
        "latency_ms": percentiles(latencies),
        "server_cpu_ms": round(server * per, 2),
        "of_which_postgresql_cpu_ms": round(database_cpu * per, 2),
        "load_generator_cpu_ms": round(own * per, 2),
        "rest_of_machine_cpu_ms": round(max(machine - server - own, 0.0) * per, 2),
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| server | cert/s | p50 / p99 (ms) | server CPU ms/cert (PostgreSQL) | load gen | others"
        " | ok / failed |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lat = r["latency_ms"]
        name = r["server"] + (f" ({', '.join(r['notes'])})" if r["notes"] else "")
        lines.append(
            f"| {name} | {r['certificates_per_s']} | {lat.get('p50', 0):.0f} / "
            f"{lat.get('p99', 0):.0f} | {r['server_cpu_ms']} ({r['of_which_postgresql_cpu_ms']}) | "
            f"{r['load_generator_cpu_ms']} | "
            f"{r['rest_of_machine_cpu_ms']} | {r['certificates']} / {r['failures']} |"
        )
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--certificates", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--http-port", type=int, default=80)
    parser.add_argument("--servers", default="acmegate,pebble,acme2certifier")
    parser.add_argument("--a2c-python", default=os.environ.get("A2C_PYTHON", ""))
    parser.add_argument("--folder", type=Path, default=Path("/tmp/acmegate-bench-servers"))
    args = parser.parse_args()
    servers = args.servers.split(",")
    if "acme2certifier" in servers and not args.a2c_python:
        parser.error("acme2certifier needs --a2c-python (see the module's docstring)")

    responder = Responder()
    rows = []
    started = datetime.datetime.now(datetime.UTC)
    folder = args.folder / started.strftime("%Y%m%dT%H%M%SZ")
    sides: dict[str, Callable[[], contextlib.AbstractAsyncContextManager[Side]]] = {
        "acmegate": lambda: acmegate_side(folder, args.http_port),
        "pebble": lambda: pebble_side(folder, args.http_port),
        "acme2certifier": lambda: a2c_side(folder, args.a2c_python),
    }
    async with responder.serving(args.http_port):
        for name in servers:
            material = precompute(args.warmup + args.certificates)
            async with sides[name]() as side:
                row = await measure(side, responder, material, args.concurrency, args.warmup)
            print(json.dumps(row), flush=True)
            rows.append(row)
    print(table(rows))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"servers-{started.strftime('%Y-%m-%dT%H%M%SZ')}.json"
    settings = {k: str(v) for k, v in vars(args).items()}
    out.write_text(json.dumps({"settings": settings, "rows": rows}, indent=2))
    print(f"results: {out}")


if __name__ == "__main__":
    if sys.platform != "linux":  # pragma: no cover - /proc accounting
        raise SystemExit("bench/servers.py measures CPU from /proc: Linux only")
    asyncio.run(main())
