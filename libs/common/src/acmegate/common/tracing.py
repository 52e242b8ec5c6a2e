"""OpenTelemetry traces, off by default (``tracing.enabled``).

With tracing on, every HTTP request an acmegate listener answers is a server span (joining
the caller's W3C ``traceparent`` when it sends one), every message a handler consumes is a
consumer span whose parent travels in the AMQP message headers (W3C Trace Context, the same
``traceparent``/``tracestate`` keys), and each pipeline stage adds a span of its own. So the
work one ACME request starts — a challenge verified by attestation, or a finalize that goes
through attestation, policy and the signer and back to the frontend's results consumer — is
one trace across the four services. A client that sends no ``traceparent`` still gets one
trace per enrollment: the ACME listener derives the trace context of every order-scoped
request from the order's id (:func:`enrollment_trace_headers`). The correlation id stays in
the logs and is also a span attribute (``acmegate.correlation_id``).

Spans are named by instrumentation scope ``acmegate.<service>`` and the process resource is
``service.name = acmegate-<service>`` (``acmegate-standalone`` for the single process).

Off, this module costs a function call and a ``None`` check per would-be span: nothing from
the OpenTelemetry SDK is imported, no context is touched and no header is written. The process
keeps its own :class:`TracerProvider` instead of the global one, so tests can turn tracing on
and off again.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Span, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from acmegate.common.config.model import TracingConfig
from acmegate.common.logging import current_correlation_id

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

# W3C Trace Context (https://www.w3.org/TR/trace-context/) in HTTP and AMQP headers alike.
_PROPAGATOR = TraceContextTextMapPropagator()
_NOTHING: contextlib.nullcontext[None] = contextlib.nullcontext()


class _HeaderGetter(Getter[Mapping[str, Any]]):
    """Reads AMQP (str or bytes values) and HTTP headers for the propagator."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        value = carrier.get(key)
        if value is None:
            return None
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        return [str(value)]

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return list(carrier)


_GETTER = _HeaderGetter()


@dataclass
class _Tracing:
    provider: TracerProvider
    sample_ratio: float = 1.0
    tracers: dict[str, Tracer] = field(default_factory=dict)

    def tracer(self, scope: str) -> Tracer:
        tracer = self.tracers.get(scope)
        if tracer is None:
            tracer = self.tracers[scope] = self.provider.get_tracer(scope)
        return tracer


_active: _Tracing | None = None


def enabled() -> bool:
    """Whether this process records spans."""
    return _active is not None


def configure(
    settings: TracingConfig, *, service: str, exporter: SpanExporter | None = None
) -> None:
    """Turn tracing on for this process as ``service`` if ``settings.enabled`` (or an
    ``exporter`` is given: tests pass an in-memory one, exported synchronously)."""
    global _active
    shutdown()
    if not settings.enabled and exporter is None:
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
    )
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    from acmegate.common.metrics import VERSION

    resource = Resource.create(
        {
            "service.name": f"acmegate-{service}",
            "service.namespace": "acmegate",
            "service.version": VERSION,
        }
    )
    provider = TracerProvider(
        resource=resource, sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio))
    )
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif settings.exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(settings.endpoint)))
    elif settings.exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    _active = _Tracing(provider, settings.sample_ratio)


def shutdown() -> None:
    """Export what is buffered and stop recording."""
    global _active
    active, _active = _active, None
    if active is not None:
        active.provider.shutdown()


def span(scope: str, name: str) -> contextlib.AbstractContextManager[Span | None]:
    """An internal span ``name`` of ``scope`` (``acmegate.<service>``) around the block."""
    if _active is None:
        return _NOTHING
    return _active.tracer(scope).start_as_current_span(name, attributes=_correlation())


def server_span(
    scope: str, name: str, headers: Mapping[str, str], attributes: Mapping[str, str]
) -> contextlib.AbstractContextManager[Span | None]:
    """A server span for one HTTP request, child of the caller's ``traceparent`` if sent."""
    if _active is None:
        return _NOTHING
    return _active.tracer(scope).start_as_current_span(
        name,
        context=_PROPAGATOR.extract(headers, getter=_GETTER),
        kind=SpanKind.SERVER,
        attributes={**attributes, **_correlation()},
    )


def consumer_span(
    queue: str, headers: Mapping[str, Any] | None
) -> contextlib.AbstractContextManager[Span | None]:
    """A consumer span for one delivery of ``queue``, child of the span that published it.

    Each queue belongs to one service and is named after it (``attestation.challenge``), which
    gives the span its scope."""
    if _active is None:
        return _NOTHING
    return _active.tracer(f"acmegate.{queue.partition('.')[0]}").start_as_current_span(
        f"{queue} process",
        context=_PROPAGATOR.extract(headers or {}, getter=_GETTER),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "rabbitmq",
            "messaging.operation.type": "process",
            "messaging.destination.name": queue,
            **_correlation(),
        },
    )


def inject(headers: MutableMapping[str, Any]) -> None:
    """Write the current trace context into message headers (nothing when tracing is off)."""
    if _active is not None:
        _PROPAGATOR.inject(headers)


def trace_headers() -> dict[str, str] | None:
    """The current trace context as headers, or None when tracing is off."""
    if _active is None:
        return None
    headers: dict[str, str] = {}
    _PROPAGATOR.inject(headers)
    return headers


def enrollment_trace_headers(order_id: str) -> dict[str, str] | None:
    """A W3C ``traceparent`` derived from ``order_id`` alone, or None when tracing is off.

    Every request about one order (newOrder, its authorization and challenge, finalize, the
    certificate) and every message they cause then share one trace id although the client
    sent no trace context, in any replica, without storing anything: the remote parent is
    the same on each request. The sampled flag applies ``sample_ratio`` to the derived trace
    id as ``TraceIdRatioBased`` does (its low 64 bits against ratio × 2⁶⁴), so an enrollment is
    sampled whole or not at all. A digest, not the id itself: order URLs stay out of traces.
    """
    if _active is None:
        return None
    digest = hashlib.sha256(b"acmegate enrollment trace\0" + order_id.encode()).digest()
    trace_id, span_id = digest[:16], digest[16:24]
    sampled = int.from_bytes(trace_id[8:]) < round(_active.sample_ratio * 2**64)
    return {"traceparent": f"00-{trace_id.hex()}-{span_id.hex()}-{'01' if sampled else '00'}"}


def _correlation() -> dict[str, str]:
    correlation_id = current_correlation_id()
    return {"acmegate.correlation_id": correlation_id} if correlation_id else {}


@contextlib.contextmanager
def recording(exporter: SpanExporter, *, service: str = "tests") -> Iterator[None]:
    """Tracing on with ``exporter`` inside the block, off again after it (tests)."""
    configure(TracingConfig(enabled=True), service=service, exporter=exporter)
    try:
        yield
    finally:
        shutdown()


__all__ = [
    "configure",
    "consumer_span",
    "enabled",
    "enrollment_trace_headers",
    "inject",
    "recording",
    "server_span",
    "shutdown",
    "span",
    "trace_headers",
]
