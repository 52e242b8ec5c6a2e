"""A broker outage (issue #12 items 1, 2 and 5): readiness says "not ready" while the bus
reconnects, the loss and the return are logged once each with the outage's length, and work
that waited for the broker goes out as soon as it is back, not after the sweeper's backoff.

The gateway reaches the shared RabbitMQ through a link the test cuts (every connection reset,
new ones refused): what the gateway sees of a stopped broker, without stopping the shared one.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from structlog.testing import capture_logs

from acmegate.common.bus import Queue
from acmegate.common.bus.amqp import AmqpBus
from acmegate.common.messages import WorkDone
from acmegate.testkit.apple_ca import AttestationCA, LeafClaims
from acmegate.testkit.device import SimulatedDevice
from tests.support.cuttable import cuttable_link
from tests.support.gateway import free_port, gateway_config, running_gateway

pytestmark = pytest.mark.e2e


def _through(url: str, port: int) -> tuple[str, tuple[str, int]]:
    """``url`` rewritten to reach its server through ``127.0.0.1:port``, reconnecting every
    second; (url, upstream)."""
    parts = urlsplit(url)
    upstream = (parts.hostname or "127.0.0.1", parts.port or 5672)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    query = "&".join(q for q in (parts.query, "reconnect_interval=1") if q)
    return urlunsplit(parts._replace(netloc=netloc, query=query)), upstream


async def _until(condition: object, timeout: float) -> float:
    """Seconds until ``condition()`` is true (fails after ``timeout``)."""
    started = time.monotonic()
    while not condition():  # type: ignore[operator]
        assert time.monotonic() - started < timeout, "condition not met in time"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def test_readiness_follows_the_connection_and_loss_and_return_are_logged_once(
    amqp_server_url: str, bus_namespace: str
) -> None:
    url, upstream = _through(amqp_server_url, free_port())
    async with cuttable_link(urlsplit(url).port or 0, upstream) as link:
        bus = AmqpBus(url, namespace=bus_namespace, max_deliveries=4)
        reconnected = asyncio.Event()
        bus.on_reconnect(reconnected.set)
        await bus.start()
        try:
            assert bus.ready()
            with capture_logs() as logs:
                await link.cut()
                await _until(lambda: not bus.ready(), timeout=5)
                await asyncio.sleep(2)
                assert not bus.ready(), "still reconnecting: not ready"
                await link.restore()
                await _until(bus.ready, timeout=15)
                await asyncio.wait_for(reconnected.wait(), timeout=5)
            await bus.publish(
                Queue.FRONTEND_RESULTS, WorkDone(correlation_id="c", kind="order", id="x")
            )
        finally:
            await bus.close()
    lost = [e for e in logs if e["event"].startswith("message broker connection lost")]
    back = [e for e in logs if e["event"] == "message broker connection restored"]
    assert len(lost) == 1, lost
    assert len(back) == 1 and back[0]["outage_seconds"] >= 2, back


async def test_work_that_waited_for_the_broker_goes_out_as_soon_as_it_is_back(
    tmp_path: Path,
    attestation_ca: AttestationCA,
    database_url: str,
    amqp_server_url: str,
    bus_namespace: str,
) -> None:
    # The production backoff: without the reconnect sweep, nothing would move for 30 s.
    files = gateway_config(
        tmp_path / "gw",
        attestation_ca,
        namespace=bus_namespace,
        overrides={"acme": {"sweep_interval": "15s", "republish_after": "30s"}},
    )
    url, upstream = _through(amqp_server_url, free_port())
    async with (
        cuttable_link(urlsplit(url).port or 0, upstream) as link,
        running_gateway(files, database_url, amqp_url=url) as gateway,
    ):
        await link.cut()
        finished: list[float] = []

        async def enroll(serial: str) -> None:
            device = SimulatedDevice(
                files.directory_url, serial, LeafClaims.macos(serial), attestation_ca
            )
            try:
                result = await device.enroll()
            finally:
                await device.close()
            assert result.ok, result.problem
            finished.append(time.monotonic())

        devices = [
            # The two devices the test inventory knows, four enrollments each.
            asyncio.create_task(enroll(f"C02E2E0000{1 + index % 2}"))
            for index in range(8)
        ]
        await asyncio.sleep(8)  # every challenge is fenced and waits for the broker
        assert not finished
        restored = time.monotonic()
        await link.restore()
        await asyncio.wait_for(asyncio.gather(*devices), timeout=45)
        first = min(finished) - restored
        count = await gateway.pool.fetchval("SELECT count(*) FROM acme.certificates")
    assert count == 8, "each enrollment has exactly one certificate"
    # The bus reconnects within about a second; the sweep runs on its return.
    assert first < 6, f"first completion {first:.1f} s after the broker's return"
