"""The trace context derived from an order id (one enrollment = one trace, tracing.py)."""

from __future__ import annotations

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from acmegate.common import tracing
from acmegate.common.config.model import TracingConfig


def test_off_nothing_is_derived() -> None:
    assert tracing.enrollment_trace_headers("order-1") is None


def test_the_same_order_always_gives_the_same_trace_and_others_another() -> None:
    with tracing.recording(InMemorySpanExporter()):
        first = tracing.enrollment_trace_headers("order-1")
        again = tracing.enrollment_trace_headers("order-1")
        other = tracing.enrollment_trace_headers("order-2")
    assert first is not None and other is not None
    assert first == again
    version, trace_id, span_id, flags = first["traceparent"].split("-")
    assert (version, len(trace_id), len(span_id), flags) == ("00", 32, 16, "01")
    assert "order-1" not in first["traceparent"]
    assert other["traceparent"].split("-")[1] != trace_id


def test_the_sample_ratio_decides_for_the_whole_enrollment() -> None:
    exporter = InMemorySpanExporter()
    for ratio, flags in ((0.0, {"00"}), (1.0, {"01"})):
        tracing.configure(TracingConfig(sample_ratio=ratio), service="tests", exporter=exporter)
        try:
            seen = {
                tracing.enrollment_trace_headers(f"order-{n}")["traceparent"][-2:]  # type: ignore[index]
                for n in range(50)
            }
        finally:
            tracing.shutdown()
        assert seen == flags
