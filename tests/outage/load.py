"""A closed-loop enrollment load against four service processes, and what the outage tier
measures: enrollments that completed, the time from a dependency's return to the first
completion, and the frontend's 5xx answers by status (from its JSON access log)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from acmegate.testkit.apple_ca import AttestationCA
from tests.support.gateway import GatewayFiles, Process, enroll

SERIALS = ["C02E2E00001", "C02E2E00002", "DMQE2EPHONE"]


@dataclass
class Load:
    files: GatewayFiles
    ca: AttestationCA
    workers: int = 6
    completions: list[float] = field(default_factory=list)  # monotonic end of each success
    refused: list[str] = field(default_factory=list)  # problems the devices saw
    errors: list[str] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker(n)) for n in range(self.workers)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def _worker(self, n: int) -> None:
        while not self._stop.is_set():
            try:
                result = await enroll(
                    self.files, self.ca, SERIALS[n % len(SERIALS)], poll_timeout=240
                )
            except Exception as exc:  # a broken protocol or a poll that never ended
                self.errors.append(f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(1)
                continue
            if result.ok:
                self.completions.append(time.monotonic())
            else:
                self.refused.append(repr(result.problems[-1]) if result.problems else "")
                await asyncio.sleep(1)  # as a client would after a 503's Retry-After

    async def completed_since(self, moment: float, *, timeout: float) -> None:
        """Return once an enrollment completed after ``moment`` (or after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(t >= moment for t in self.completions):
                return
            await asyncio.sleep(0.1)

    def first_completion_after(self, moment: float) -> float:
        later = [t for t in self.completions if t >= moment]
        if not later:
            raise AssertionError("no enrollment completed after the dependency came back")
        return min(later) - moment


def server_errors(frontend: Process) -> dict[int, int]:
    """The frontend's 5xx answers by status, from its access log (one JSON line a request)."""
    counts: Counter[int] = Counter()
    for line in frontend.output:
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if record.get("event") == "request" and int(record.get("status", 0)) >= 500:
                counts[int(record["status"])] += 1
    return dict(counts)


async def ledger(database_url: str) -> dict[str, Any]:
    """What the database says: orders by status, certificates issued and delivered, and
    whether any order got two certificates."""
    connection = await asyncpg.connect(database_url)
    try:
        orders = {
            row["status"]: row["n"]
            for row in await connection.fetch(
                "SELECT status, count(*) AS n FROM acme.orders GROUP BY status"
            )
        }
        issued = await connection.fetchval("SELECT count(*) FROM pki.certificates")
        delivered = await connection.fetchval("SELECT count(*) FROM acme.certificates")
        outbox = await connection.fetchval("SELECT count(*) FROM acme.outbox")
        problems = await connection.fetch(
            "SELECT error FROM acme.orders WHERE status = 'invalid' LIMIT 5"
        )
    finally:
        await connection.close()
    return {
        "orders": orders,
        "issued": issued,
        "delivered": delivered,
        "outbox": outbox,
        "invalid_examples": [row["error"] for row in problems],
    }


def report(name: str, figures: dict[str, Any]) -> None:
    """Print the figures (``-s`` shows them) and add them to ACMEGATE_OUTAGE_REPORT if set."""
    print(f"OUTAGE-FIGURES {name} {json.dumps(figures, sort_keys=True, default=str)}")
    target = os.environ.get("ACMEGATE_OUTAGE_REPORT")
    if target:
        path = Path(target)
        existing = json.loads(path.read_text()) if path.exists() else {}
        existing[name] = figures
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(existing, indent=2, sort_keys=True, default=str) + "\n")
