"""The load: simulated Apple devices enrolling, closed-loop or open-loop.

What a device makes on its own hardware before it talks to the server (its Secure Enclave
key, its ACME account key, its CSR) is precomputed before the clock starts, so the load
generator does not steal the gateway's CPU for it. What depends on the order stays in the
timed run, as on a real device: the attestation leaf for the challenge's token (minted by the
test Apple CA) and every JWS signature.

- closed loop: ``concurrency`` devices at a time, each starting when the previous finished
  (saturates the gateway: throughput);
- open loop: arrivals at ``rate`` per second for ``duration`` seconds, Poisson-spaced and
  independent of how fast the gateway answers, latency measured from the scheduled arrival
  (so a slow gateway cannot hide its queueing, "coordinated omission").
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from acmegate.testkit.apple_ca import AttestationCA, LeafClaims
from acmegate.testkit.csr import build_csr
from acmegate.testkit.device import DEVICE_ATTESTATION, SimulatedDevice
from acmegate.testkit.jws import JwsSigner

# Each HTTP session connects from its own loopback address (127.1.x.y; Linux answers all of
# 127/8), as devices at many sites do.
SESSIONS = 64


@dataclass(frozen=True)
class Material:
    """What one device has before it contacts the server."""

    serial: str
    device_key: ec.EllipticCurvePrivateKey
    account: JwsSigner
    csr: x509.CertificateSigningRequest


def precompute(serials: list[str]) -> list[Material]:
    """Device key (P-384), account key (ES256) and CSR (CN = serial) for each serial."""
    made = []
    for serial in serials:
        key = ec.generate_private_key(ec.SECP384R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, serial)])
        made.append(Material(serial, key, JwsSigner.generate(), build_csr(key, subject)))
    return made


@dataclass
class Results:
    """What the enrollments of one phase saw."""

    ok: int = 0
    failed: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    steps: dict[str, list[float]] = field(default_factory=dict)
    signed_requests: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def fail(self, kind: str) -> None:
        self.failed += 1
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def summary(self) -> dict[str, Any]:
        """Counts, enrollments/s, latency percentiles of the whole and of each step (ms)."""
        return {
            "ok": self.ok,
            "failed": self.failed,
            "seconds": round(self.seconds, 2),
            "enrollments_per_second": round(self.ok / self.seconds, 1) if self.seconds else 0,
            "latency_ms": percentiles(self.latencies),
            "step_latency_ms": {step: percentiles(v) for step, v in self.steps.items()},
            "signed_requests_per_enrollment": round(self.signed_requests / max(self.ok, 1), 2),
            "errors": self.errors,
        }

    @property
    def device_seconds(self) -> float:
        """Seconds the load generator spent minting attestation leaves (its own crypto)."""
        return sum(self.steps.get(DEVICE_ATTESTATION, []))


def percentiles(values: list[float]) -> dict[str, float]:
    """p50/p90/p99/max/mean of ``values`` (seconds) in milliseconds."""
    if not values:
        return {}
    ordered = sorted(values)

    def at(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 1)

    return {
        "p50": at(0.5),
        "p90": at(0.9),
        "p99": at(0.99),
        "max": round(ordered[-1] * 1000, 1),
        "mean": round(statistics.fmean(ordered) * 1000, 1),
    }


class Load:
    """Drives devices against ``directory_url`` through :data:`SESSIONS` HTTP sessions."""

    def __init__(self, directory_url: str, ca: AttestationCA) -> None:
        self.directory_url = directory_url
        self.ca = ca
        self.sessions: list[aiohttp.ClientSession] = []

    async def __aenter__(self) -> Load:
        self.sessions = [
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=0, local_addr=(f"127.1.{w // 250}.{w % 250 + 1}", 0)
                )
            )
            for w in range(SESSIONS)
        ]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for http in self.sessions:
            await http.close()

    async def enroll(
        self, material: Material, http: aiohttp.ClientSession, results: Results, began: float
    ) -> None:
        """One enrollment; its latency counts from ``began`` (perf_counter)."""
        device = SimulatedDevice(
            self.directory_url,
            material.serial,
            LeafClaims.macos(material.serial),
            self.ca,
            session=http,
            poll_interval=0.05,
            poll_timeout=120,
            device_key=material.device_key,
            account=material.account,
            csr=material.csr,
        )
        try:
            result = await device.enroll()
        except Exception as exc:  # counted and reported: a benchmark goes on
            results.fail(type(exc).__name__)
            return
        if not result.ok:
            results.fail(result.problem.kind if result.problem else "unknown")
            return
        results.ok += 1
        results.latencies.append(time.perf_counter() - began)
        results.signed_requests += device.session.signed_requests
        for step, seconds in result.timings.items():
            results.steps.setdefault(step, []).append(seconds)

    async def closed_loop(self, materials: list[Material], concurrency: int) -> Results:
        """``concurrency`` devices at a time until every one of ``materials`` enrolled."""
        results = Results()
        pending: Iterator[Material] = iter(materials)

        async def worker(w: int) -> None:
            http = self.sessions[w % len(self.sessions)]
            for material in pending:
                await self.enroll(material, http, results, time.perf_counter())

        began = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        results.seconds = time.perf_counter() - began
        return results

    async def open_loop(
        self, materials: list[Material], rate: float, duration: float, seed: int = 8555
    ) -> Results:
        """Poisson arrivals at ``rate``/s for ``duration`` s (``materials`` must suffice);
        waits for the last enrollment. ``seconds`` runs until the last one finished, so
        enrollments/s falls below ``rate`` when the gateway cannot keep up."""
        results = Results()
        arrivals = random.Random(seed)
        tasks: list[asyncio.Task[None]] = []
        began = time.perf_counter()
        at = began
        for i, material in enumerate(materials):
            at += arrivals.expovariate(rate)
            if at - began > duration:
                break
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            http = self.sessions[i % len(self.sessions)]
            tasks.append(asyncio.create_task(self.enroll(material, http, results, at)))
        else:
            raise ValueError("not enough precomputed devices for this rate and duration")
        await asyncio.gather(*tasks)
        results.seconds = time.perf_counter() - began
        return results
