"""What every acmegate HTTP listener records of each request: one aiohttp middleware.

Outermost on each listener (ACME, admin, PKI, RADIUS, health), it gives the request its
correlation id (bound to every log line the request causes, and reused by the listener's own
middleware), and once the response is decided it

- counts the response and times it in ``/metrics`` by listener and route *pattern*
  (``/acme/order/{order_id}``; unmatched paths are one ``unmatched`` route), so the label set
  stays bounded;
- writes one access-log line (``logging.access_log``, on by default): listener, method, route,
  path, status, duration and the client address. Never a query string, a header or a body, so
  no bearer token, enrollment token or JWS reaches the log;
- with tracing on, wraps the request in a server span that joins the caller's ``traceparent``,
  or when the caller sends none, the trace context ``trace_seed`` names for the request (the
  ACME listener: the order it is about, so that one enrollment is one trace).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from acmegate.common import metrics, tracing
from acmegate.common.ids import new_correlation_id
from acmegate.common.logging import access_log_enabled, bind_correlation_id

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# The seed of a request's trace context when its caller sends none (tracing.enrollment_*).
TraceSeed = Callable[[web.Request], Awaitable[str | None]]

access_log = structlog.get_logger("acmegate.access")
NO_SPAN: contextlib.nullcontext[None] = contextlib.nullcontext()

UNMATCHED = "unmatched"


def route_of(request: web.Request) -> str:
    """The pattern of the route that matched ``request`` (bounded, unlike its path)."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


def observe_requests(
    listener: str, *, service: str, log_access: bool = True, trace_seed: TraceSeed | None = None
) -> Middleware:
    """The middleware for ``listener`` (``acme``, ``admin``, ``pki``, ``radius``, ``health``)
    of ``service``."""
    scope = f"acmegate.{service}"

    async def trace_context(request: web.Request) -> Mapping[str, str]:
        if trace_seed is None or "traceparent" in request.headers:
            return request.headers
        seed = await trace_seed(request)
        derived = tracing.enrollment_trace_headers(seed) if seed is not None else None
        return derived if derived is not None else request.headers

    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        route = route_of(request)
        status = 500
        with (
            bind_correlation_id(new_correlation_id()),
            (
                tracing.server_span(
                    scope,
                    f"{request.method} {route}",
                    await trace_context(request),
                    {"http.request.method": request.method, "http.route": route},
                )
                if tracing.enabled()
                else NO_SPAN
            ) as span,
        ):
            try:
                response = await handler(request)
                status = response.status
                return response
            except web.HTTPException as exc:
                status = exc.status
                raise
            finally:
                duration = time.perf_counter() - started
                metrics.http_duration(listener, route, request.method).observe(duration)
                metrics.http_responses(listener, route, str(status)).inc()
                if span is not None:
                    span.set_attribute("http.response.status_code", status)
                if log_access and access_log_enabled():
                    access_log.info(
                        "request",
                        listener=listener,
                        method=request.method,
                        route=route,
                        path=request.path,
                        status=status,
                        duration_ms=round(duration * 1000, 2),
                        remote=request.remote,
                    )

    return observe
