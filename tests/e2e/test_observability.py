"""Watching a gateway: /metrics after an enrollment, and one enrollment as one trace.

The gateway runs in this process (all four services); the four-process variant with each
service's own /metrics and the OTLP exporter is in ``test_observability_distributed.py``.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from acmegate.common import tracing
from acmegate.common.health import HealthServer
from acmegate.testkit.apple_ca import AttestationCA, LeafClaims
from acmegate.testkit.device import EnrollmentResult, SimulatedDevice
from tests.support import metrics
from tests.support.gateway import Gateway, free_port, gateway_config, running_gateway

pytestmark = pytest.mark.e2e

FOUR_SERVICES = {"acmegate.frontend", "acmegate.attestation", "acmegate.policy", "acmegate.signer"}


@pytest.fixture
async def health(gateway: Gateway) -> AsyncIterator[HealthServer]:
    server = HealthServer(gateway.running.runtime, "127.0.0.1", free_port())
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def enroll(
    directory_url: str, ca: AttestationCA, serial: str, **kw: object
) -> EnrollmentResult:
    device = SimulatedDevice(directory_url, serial, LeafClaims.macos(serial), ca, **kw)  # type: ignore[arg-type]
    try:
        result = await device.enroll()
    finally:
        await device.close()
    assert result.ok, result.problems
    return result


async def test_metrics_move_with_one_enrollment(
    gateway: Gateway, health: HealthServer, attestation_ca: AttestationCA
) -> None:
    _, before = await metrics.scrape(f"{health.url}/metrics")
    result = await enroll(gateway.directory_url, attestation_ca, "C02E2E00001")

    def moved(name: str, **labels: str) -> float:
        return metrics.total(after, name, **labels) - metrics.total(before, name, **labels)

    # The device has its certificate; the policy stage may still be writing its audit row.
    for _ in range(50):
        text, after = await metrics.scrape(f"{health.url}/metrics")
        if moved("acmegate_bus_handler_duration_seconds_count") == 6:
            break
        await asyncio.sleep(0.1)

    issued = {"stage": "finalize", "outcome": "issued", "problem": ""}
    assert moved("acmegate_enrollments_total", **issued) == 1
    assert moved("acmegate_enrollments_total", outcome="refused") == 0
    assert moved("acmegate_enrollment_duration_seconds_count") == 1
    assert 0 < moved("acmegate_enrollment_duration_seconds_sum") < 60
    for stage in ("attestation_verify", "csr_check", "policy_decision", "signing"):
        assert moved("acmegate_stage_duration_seconds_count", stage=stage) == 1, stage
    # Challenge → attestation → results; finalize → attestation → policy → signer → results.
    for queue, published in (
        ("attestation.challenge", 1),
        ("attestation.finalize", 1),
        ("policy.finalize", 1),
        ("signer.finalize", 1),
        ("frontend.results", 2),
    ):
        assert moved("acmegate_bus_published_total", queue=queue) == published, queue
        assert moved("acmegate_bus_consumed_total", queue=queue, outcome="acked") == published
        assert moved("acmegate_bus_handler_duration_seconds_count", queue=queue) == published
    assert moved("acmegate_bus_dead_lettered_total") == 0
    assert moved("acmegate_certificates_issued_total", ca="devices") == 1
    assert moved("acmegate_signal_source_lookups_total", source="inventory", result="found") == 1
    assert metrics.value(after, "acmegate_signal_source_up", {"source": "inventory"}) == 1
    assert moved("acmegate_db_pool_acquire_seconds_count") > 5
    assert metrics.total(after, "acmegate_db_pool_max_connections") >= 2
    assert metrics.value(after, "acmegate_crl_next_update_timestamp_seconds", {"ca": "devices"}) > (
        time.time()
    )
    assert metrics.total(after, "acmegate_build_info") == 1

    # The device's requests, by route pattern: never an id, a serial or a nonce as a label.
    new_order = {"listener": "acme", "route": "/acme/new-order", "status": "201"}
    assert moved("acmegate_http_responses_total", **new_order) == 1
    finalize = {"listener": "acme", "route": "/acme/order/{id}/finalize", "status": "200"}
    assert moved("acmegate_http_responses_total", **finalize) == 1
    assert moved("acmegate_http_request_duration_seconds_count", listener="acme") >= 6
    routes = {
        dict(labels)["route"]
        for name, labels in after
        if name == "acmegate_http_responses_total" and dict(labels)["listener"] == "acme"
    }
    # (other tests in this process may have probed paths that match no route: `unmatched`)
    assert all(
        route == "unmatched" or (route.startswith("/acme/") and "C02" not in route)
        for route in routes
    ), routes
    assert result.certificate is not None and result.order_url and result.account_url
    for private in (
        result.order_url.rsplit("/", 1)[1],
        result.account_url.rsplit("/", 1)[1],
        format(result.certificate.serial_number, "x"),
    ):
        assert private not in text, f"{private} became a label value"


async def test_the_health_listener_answers_probes(health: HealthServer) -> None:
    async with aiohttp.ClientSession() as http:
        for path, status in (("/healthz", 200), ("/readyz", 200), ("/nope", 404)):
            async with http.get(health.url + path) as response:
                assert response.status == status, path


def _trace_id(span: ReadableSpan) -> str:
    assert span.context is not None
    return format(span.context.trace_id, "032x")


async def test_one_enrollment_over_rabbitmq_is_one_trace_across_the_four_services(
    tmp_path: Path,
    attestation_ca: AttestationCA,
    database_url: str,
    amqp_server_url: str,
    bus_namespace: str,
) -> None:
    """The device sends a W3C traceparent (as a client that traces does); the gateway joins
    it and carries it through the AMQP headers of every message the enrollment causes."""
    files = gateway_config(tmp_path / "gateway", attestation_ca, namespace=bus_namespace)
    exporter = InMemorySpanExporter()
    trace_id = secrets.token_hex(16)
    traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    with tracing.recording(exporter):
        async with (
            running_gateway(files, database_url, amqp_url=amqp_server_url),
            aiohttp.ClientSession(headers={"traceparent": traceparent}) as http,
        ):
            await enroll(files.directory_url, attestation_ca, "C02E2E00002", session=http)
    spans = exporter.get_finished_spans()
    assert {_trace_id(span) for span in spans} == {trace_id}
    scopes = {span.instrumentation_scope.name for span in spans if span.instrumentation_scope}
    assert scopes >= FOUR_SERVICES, scopes
    by_name: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    for name in (
        "attestation.challenge process",
        "attestation.finalize process",
        "policy.finalize process",
        "signer.finalize process",
    ):
        assert len(by_name[name]) == 1, name
        assert by_name[name][0].kind is SpanKind.CONSUMER
    assert len(by_name["frontend.results process"]) == 2
    for stage in ("verify attestation", "check CSR", "decide", "sign"):
        assert len(by_name[stage]) == 1, stage

    # The chain of the finalize request: HTTP → attestation → policy → signer → results.
    def parent_of(name: str) -> ReadableSpan:
        (span,) = by_name[name]
        assert span.parent is not None
        (parent,) = [s for s in spans if s.context and s.context.span_id == span.parent.span_id]
        return parent

    assert parent_of("attestation.finalize process").name == ("POST /acme/order/{id}/finalize")
    assert parent_of("policy.finalize process").name == "attestation.finalize process"
    assert parent_of("signer.finalize process").name == "policy.finalize process"
    assert parent_of("sign").name == "signer.finalize process"
    server = by_name["POST /acme/order/{id}/finalize"][0]
    assert server.kind is SpanKind.SERVER
    assert server.attributes is not None
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["acmegate.correlation_id"]


async def test_one_enrollment_is_one_trace_without_a_client_traceparent(
    tmp_path: Path,
    attestation_ca: AttestationCA,
    database_url: str,
    amqp_server_url: str,
    bus_namespace: str,
) -> None:
    """A client that traces nothing: every request about the order and every message they
    cause share the trace derived from the order; the requests before it do not."""
    files = gateway_config(tmp_path / "gateway", attestation_ca, namespace=bus_namespace)
    exporter = InMemorySpanExporter()
    with tracing.recording(exporter):
        async with running_gateway(files, database_url, amqp_url=amqp_server_url):
            await enroll(files.directory_url, attestation_ca, "C02E2E00001")
    spans = exporter.get_finished_spans()
    (new_order,) = [s for s in spans if s.name == "POST /acme/new-order"]
    trace_id = _trace_id(new_order)
    ours = [span for span in spans if _trace_id(span) == trace_id]
    scopes = {span.instrumentation_scope.name for span in ours if span.instrumentation_scope}
    assert scopes >= FOUR_SERVICES, scopes
    names = {span.name for span in ours}
    assert names >= {
        "POST /acme/new-order",
        "POST /acme/authz/{id}",
        "POST /acme/chall/{id}",
        "POST /acme/order/{id}/finalize",
        "POST /acme/cert/{id}",
        "attestation.challenge process",
        "attestation.finalize process",
        "policy.finalize process",
        "signer.finalize process",
        "frontend.results process",
        "verify attestation",
        "sign",
    }, names
    # Everything the enrollment caused is in it; only the requests before the order are not.
    others = {span.name for span in spans if _trace_id(span) != trace_id}
    assert others <= {
        "GET /acme/directory",
        "HEAD /acme/new-nonce",
        "GET /acme/new-nonce",
        "POST /acme/new-account",
    }, others


async def test_without_tracing_no_trace_context_is_written(
    gateway: Gateway, attestation_ca: AttestationCA
) -> None:
    assert not tracing.enabled()
    assert tracing.trace_headers() is None
    with tracing.span("acmegate.tests", "nothing") as span:
        assert span is None
    await enroll(gateway.directory_url, attestation_ca, "DMQE2EPHONE")
