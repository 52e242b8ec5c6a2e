"""The four services as four ``acmegate run`` processes over RabbitMQ, watched as in production:
each process's own /metrics, its JSON log lines, and its spans exported over OTLP/HTTP to a
collector (here a small receiver in the test) where one enrollment is one trace."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from acmegate.testkit.apple_ca import AttestationCA, LeafClaims
from acmegate.testkit.device import SimulatedDevice
from tests.support import metrics
from tests.support.gateway import (
    Process,
    free_port,
    gateway_config,
    start_service,
    stop_service,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@dataclass
class Collector:
    """An OTLP/HTTP traces receiver: (service.name, span name, trace id) of every span."""

    port: int = field(default_factory=free_port)
    spans: list[tuple[str, str, str]] = field(default_factory=list)

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        export = ExportTraceServiceRequest.FromString(body)
        for resource_spans in export.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append((attributes["service.name"], span.name, span.trace_id.hex()))
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )


@pytest.fixture
async def collector() -> AsyncIterator[Collector]:
    collector = Collector()
    app = web.Application()
    app.router.add_post("/v1/traces", collector.receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", collector.port).start()
    try:
        yield collector
    finally:
        await runner.cleanup()


async def test_four_processes_each_export_metrics_logs_and_spans_of_one_enrollment(
    tmp_path: Path,
    attestation_ca: AttestationCA,
    database_url: str,
    amqp_server_url: str,
    bus_namespace: str,
    collector: Collector,
) -> None:
    files = gateway_config(
        tmp_path / "gateway",
        attestation_ca,
        namespace=bus_namespace,
        overrides={
            "logging": {"level": "info", "json": True},
            "tracing": {
                "enabled": True,
                "exporter": "otlp",
                "endpoint": f"http://127.0.0.1:{collector.port}/v1/traces",
            },
        },
    )
    env = {"ACMEGATE_DATABASE_URL": database_url, "ACMEGATE_AMQP_URL": amqp_server_url}
    health = {name: free_port() for name in ("signer", "policy", "attestation", "frontend")}
    started: dict[str, tuple[Process, asyncio.Task[None]]] = {}
    trace_id = secrets.token_hex(16)
    scraped = {}
    try:
        for name, port in health.items():
            started[name] = await start_service(
                name, files, env, extra=["--health-port", str(port), "--health-host", "127.0.0.1"]
            )
        async with aiohttp.ClientSession(
            headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
        ) as http:
            device = SimulatedDevice(
                files.directory_url,
                "C02E2E00001",
                LeafClaims.macos("C02E2E00001"),
                attestation_ca,
                session=http,
            )
            result = await device.enroll()
        assert result.ok, result.problems
        await asyncio.sleep(0.5)  # the policy stage's audit row, after the certificate
        for name, port in health.items():
            _, scraped[name] = await metrics.scrape(f"http://127.0.0.1:{port}/metrics")
    finally:
        for proc, pump in reversed(list(started.values())):
            await stop_service(proc, pump)

    # Each process reports what it did, and only that.
    def stage(name: str, stage: str) -> float:
        return metrics.total(scraped[name], "acmegate_stage_duration_seconds_count", stage=stage)

    frontend = scraped["frontend"]
    assert metrics.total(frontend, "acmegate_enrollments_total", outcome="issued") == 1
    assert metrics.total(frontend, "acmegate_http_responses_total", listener="acme") >= 6
    assert stage("attestation", "attestation_verify") == 1
    assert stage("attestation", "csr_check") == 1
    assert stage("policy", "policy_decision") == 1
    assert stage("signer", "signing") == 1
    assert stage("frontend", "signing") == 0
    assert metrics.total(scraped["signer"], "acmegate_certificates_issued_total") == 1
    assert metrics.total(scraped["attestation"], "acmegate_db_pool_max_connections") == 0
    for name in health:
        assert metrics.total(scraped[name], "process_resident_memory_bytes") > 0

    # Every process exported its spans at exit, all under the enrollment's trace id.
    ours = [(service, span) for service, span, trace in collector.spans if trace == trace_id]
    services = {service for service, _ in ours}
    assert services == {
        "acmegate-frontend",
        "acmegate-attestation",
        "acmegate-policy",
        "acmegate-signer",
    }, collector.spans
    assert ("acmegate-signer", "sign") in ours
    assert ("acmegate-policy", "policy.finalize process") in ours

    # Every line each service wrote is JSON: its own, the access log's, the libraries'.
    for name, (proc, _) in started.items():
        for line in proc.output:
            if line.startswith(f"acmegate {name} is running"):
                continue
            event = json.loads(line)
            assert event["service"] == name, line
    access = [
        json.loads(line)
        for line in started["frontend"][0].output
        if '"event": "request"' in line and '"listener": "acme"' in line
    ]
    finalize = [a for a in access if a["route"] == "/acme/order/{id}/finalize"]
    assert len(finalize) == 1, access
    assert finalize[0]["status"] == 200 and finalize[0]["method"] == "POST"
    assert finalize[0]["duration_ms"] > 0 and finalize[0]["correlation_id"]
    with contextlib.suppress(StopIteration):
        leaked = next(line for line in started["frontend"][0].output if "protected" in line)
        raise AssertionError(f"a JWS reached the log: {leaked}")
