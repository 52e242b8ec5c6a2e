"""The Prometheus metrics of every acmegate process (prometheus-client, its default registry).

Each process serves its own ``/metrics`` on its health listener (``acmegate.common.health``):
a service process exports what it did, ``acmegate standalone`` what all four did. Every
metric is defined here, once, so the names the dashboard and the alert rules in ``deploy/``
use have one home; docs/operations.md lists them.

Label sets are bounded: queues, stages, outcomes and problem types come from enums; routes
are aiohttp's route patterns (``/acme/order/{order_id}``), never paths; CA, signal-source and
Jamf-endpoint names come from the configuration or a fixed API. No serial, id or device name
is ever a label.

Hot paths never call ``.labels()``: children are resolved once, either here (enums) or on
first use by :class:`Children`, which keeps them in a dict. An observation is then a lock
and an addition inside prometheus-client.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Generic, Protocol, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from acmegate.common.bus.base import Queue
from acmegate.common.errors import ErrorKind

__all__ = ["CONTENT_TYPE", "Children", "exposition"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Seconds. Requests and stages take milliseconds; finalize waits and Jamf run to seconds.
_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# A whole enrollment spans a device's requests and polls: up to the processing budget.
_ENROLLMENT = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

M = TypeVar("M", bound=MetricWrapperBase)


class Children(Generic[M]):
    """The children of one labelled metric, each resolved once and then kept."""

    __slots__ = ("_cache", "_metric")

    def __init__(self, metric: M) -> None:
        self._metric = metric
        self._cache: dict[tuple[str, ...], M] = {}

    def __call__(self, *values: str) -> M:
        child = self._cache.get(values)
        if child is None:
            child = self._cache[values] = self._metric.labels(*values)
        return child


def _package_version() -> str:
    try:
        return version("acmegate-common")
    except PackageNotFoundError:  # running from a source tree without metadata
        return "unknown"


VERSION = _package_version()

BUILD_INFO = Gauge("acmegate_build_info", "The running acmegate version (always 1).", ["version"])
BUILD_INFO.labels(VERSION).set(1)

# --- HTTP listeners (acme, admin, pki, radius, health) -------------------------------------

HTTP_DURATION = Histogram(
    "acmegate_http_request_duration_seconds",
    "Time to answer an HTTP request, by listener and route pattern.",
    ["listener", "route", "method"],
    buckets=_LATENCY,
)
HTTP_RESPONSES = Counter(
    "acmegate_http_responses_total",
    "HTTP responses by listener, route pattern and status code.",
    ["listener", "route", "status"],
)
http_duration: Children[Histogram] = Children(HTTP_DURATION)
http_responses: Children[Counter] = Children(HTTP_RESPONSES)

# --- enrollments (frontend) -----------------------------------------------------------------

ENROLLMENTS = Counter(
    "acmegate_enrollments_total",
    "Enrollments that ended, by stage (challenge: the attestation failed; finalize: the "
    "order's outcome), outcome (issued; refused: the device or policy was at fault; failed: "
    "the gateway was) and ACME problem type.",
    ["stage", "outcome", "problem"],
)
ENROLLMENT_DURATION = Histogram(
    "acmegate_enrollment_duration_seconds",
    "From newOrder to the certificate being issued.",
    buckets=_ENROLLMENT,
)
ENROLLMENT_ISSUED = ENROLLMENTS.labels("finalize", "issued", "")


def _enrollment_outcomes() -> dict[tuple[str, ErrorKind], Counter]:
    # Every (stage, problem) pair exists from the start: a ratio over a series that appears
    # only at the first failure would hide that first failure from `rate()`.
    return {
        (stage, kind): ENROLLMENTS.labels(
            stage, "failed" if kind is ErrorKind.SERVER_INTERNAL else "refused", str(kind)
        )
        for stage in ("challenge", "finalize")
        for kind in ErrorKind
    }


_ENROLLMENT_ENDED = _enrollment_outcomes()


def enrollment_ended(stage: str, kind: str) -> None:
    """An enrollment ended at ``stage`` (``challenge`` or ``finalize``) with problem ``kind``."""
    counter = _ENROLLMENT_ENDED.get((stage, kind))  # type: ignore[arg-type]
    if counter is None:  # not one of ours: counted, under its own name
        counter = ENROLLMENTS.labels(stage, "refused", kind)
    counter.inc()


# --- bus --------------------------------------------------------------------------------------

BUS_PUBLISHED = Counter(
    "acmegate_bus_published_total", "Messages published (confirmed), by queue.", ["queue"]
)
BUS_CONSUMED = Counter(
    "acmegate_bus_consumed_total",
    "Deliveries handled, by queue and outcome (acked; retried: redelivered after a backoff). "
    "Dead-lettered deliveries are counted in acmegate_bus_dead_lettered_total.",
    ["queue", "outcome"],
)
BUS_REDELIVERIES = Counter(
    "acmegate_bus_redeliveries_total",
    "Deliveries of a message that was delivered before, by queue.",
    ["queue"],
)
BUS_DEAD_LETTERED = Counter(
    "acmegate_bus_dead_lettered_total",
    "Messages sent to the dead-letter queue, by queue and reason (rejected, undecodable, "
    "max_deliveries).",
    ["queue", "reason"],
)
BUS_HANDLER_DURATION = Histogram(
    "acmegate_bus_handler_duration_seconds",
    "Time a handler took for one delivery, by queue.",
    ["queue"],
    buckets=_LATENCY,
)

BUS_OUTAGE_RETRIES = Counter(
    "acmegate_bus_outage_retries_total",
    "Handler runs repeated on the same delivery because a dependency (database, broker) was "
    "unreachable; these never count towards max_deliveries.",
    ["queue"],
)


class QueueMetrics:
    """The bus children of one queue, resolved once."""

    __slots__ = (
        "acked",
        "dead_max_deliveries",
        "dead_rejected",
        "dead_undecodable",
        "handler",
        "outage_retries",
        "published",
        "redelivered",
        "retried",
    )

    def __init__(self, queue: str) -> None:
        self.published = BUS_PUBLISHED.labels(queue)
        self.acked = BUS_CONSUMED.labels(queue, "acked")
        self.retried = BUS_CONSUMED.labels(queue, "retried")
        self.redelivered = BUS_REDELIVERIES.labels(queue)
        self.dead_rejected = BUS_DEAD_LETTERED.labels(queue, "rejected")
        self.dead_undecodable = BUS_DEAD_LETTERED.labels(queue, "undecodable")
        self.dead_max_deliveries = BUS_DEAD_LETTERED.labels(queue, "max_deliveries")
        self.handler = BUS_HANDLER_DURATION.labels(queue)
        self.outage_retries = BUS_OUTAGE_RETRIES.labels(queue)


QUEUES: dict[Queue, QueueMetrics] = {queue: QueueMetrics(str(queue)) for queue in Queue}

# --- pipeline stages --------------------------------------------------------------------------

STAGE_DURATION = Histogram(
    "acmegate_stage_duration_seconds",
    "Time of one pipeline stage: attestation_verify (device-attest-01), csr_check (the CSR "
    "against the attested key), policy_decision (lookups, policies, template), signing.",
    ["stage"],
    buckets=_LATENCY,
)
STAGE_ATTESTATION = STAGE_DURATION.labels("attestation_verify")
STAGE_CSR = STAGE_DURATION.labels("csr_check")
STAGE_VALIDATION = STAGE_DURATION.labels("challenge_validation")
STAGE_POLICY = STAGE_DURATION.labels("policy_decision")
STAGE_SIGNING = STAGE_DURATION.labels("signing")

# --- signal sources and Jamf Pro ---------------------------------------------------------------

SOURCE_UP = Gauge(
    "acmegate_signal_source_up",
    "1 if the signal source's last lookup got an answer, 0 if it could not answer.",
    ["source"],
)
SOURCE_LOOKUPS = Counter(
    "acmegate_signal_source_lookups_total",
    "Device lookups by signal source and result (found, unknown, unavailable).",
    ["source", "result"],
)
source_lookups: Children[Counter] = Children(SOURCE_LOOKUPS)
source_up: Children[Gauge] = Children(SOURCE_UP)

JAMF_REQUESTS = Histogram(
    "acmegate_jamf_request_duration_seconds",
    "Jamf Pro API requests by signal source, endpoint (ids as {id}) and HTTP status (or the "
    "failure: connect, dns, tls, timeout).",
    ["source", "endpoint", "status"],
    buckets=_LATENCY,
)
jamf_requests: Children[Histogram] = Children(JAMF_REQUESTS)

# --- frontend outbox and sweeper -------------------------------------------------------------

OUTBOX_BACKLOG = Gauge(
    "acmegate_outbox_backlog", "Challenges and orders handed to the pipeline, not yet answered."
)
OUTBOX_OLDEST_AGE = Gauge(
    "acmegate_outbox_oldest_age_seconds",
    "Age of the oldest unanswered outbox row (0 when there is none), as of the last sweep.",
)
SWEEPER_ACTIONS = Counter(
    "acmegate_sweeper_actions_total",
    "Outbox rows the sweeper handled: republished (late), failed (budget spent).",
    ["action"],
)
SWEEPER_REPUBLISHED = SWEEPER_ACTIONS.labels("republished")
SWEEPER_FAILED = SWEEPER_ACTIONS.labels("failed")

# --- database pool ---------------------------------------------------------------------------

DB_POOL_WAIT = Histogram(
    "acmegate_db_pool_acquire_seconds",
    "Time a query waited for a connection from the pool.",
    buckets=(0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0),
)


class _Pool(Protocol):
    def get_size(self) -> int: ...
    def get_idle_size(self) -> int: ...
    def get_max_size(self) -> int: ...
    def is_closing(self) -> bool: ...


class _PoolCollector(Collector):
    """Connections of every live pool of this process, read at scrape time (no hot-path cost)."""

    def __init__(self) -> None:
        self.pools: weakref.WeakSet[_Pool] = weakref.WeakSet()

    def collect(self) -> Iterable[GaugeMetricFamily]:
        in_use = idle = maximum = 0
        for pool in list(self.pools):
            if pool.is_closing():
                continue
            size, free = pool.get_size(), pool.get_idle_size()
            in_use += size - free
            idle += free
            maximum += pool.get_max_size()
        connections = GaugeMetricFamily(
            "acmegate_db_pool_connections",
            "PostgreSQL connections of this process's pools, by state (in_use, idle).",
            labels=["state"],
        )
        connections.add_metric(["in_use"], in_use)
        connections.add_metric(["idle"], idle)
        yield connections
        yield GaugeMetricFamily(
            "acmegate_db_pool_max_connections",
            "The most connections this process's pools may open (database.pool_max).",
            value=maximum,
        )


_POOLS = _PoolCollector()
REGISTRY.register(_POOLS)


def watch_pool(pool: _Pool) -> None:
    """Report ``pool``'s connections in ``/metrics`` while it lives."""
    _POOLS.pools.add(pool)


# --- rate limits and retention --------------------------------------------------------------

RATE_LIMIT_REFUSALS = Counter(
    "acmegate_rate_limit_refusals_total",
    "Requests refused with rateLimited (429), by limit (the rate_limits key).",
    ["limit"],
)
rate_limit_refusals: Children[Counter] = Children(RATE_LIMIT_REFUSALS)

RETENTION_PURGED = Counter(
    "acmegate_retention_purged_total",
    "Rows the retention step deleted, by kind (certificates, orders, accounts, "
    "enrollment_events, rate_limits, lookups).",
    ["kind"],
)
retention_purged: Children[Counter] = Children(RETENTION_PURGED)

# --- signer: certificates and CRLs -----------------------------------------------------------

CERTIFICATES_ISSUED = Counter(
    "acmegate_certificates_issued_total", "Certificates signed, by CA.", ["ca"]
)
CERTIFICATES_REVOKED = Counter(
    "acmegate_certificates_revoked_total",
    "Certificates revoked by this process (bus, admin API, RADIUS), by CA and RFC 5280 reason.",
    ["ca", "reason"],
)
certificates_issued: Children[Counter] = Children(CERTIFICATES_ISSUED)
certificates_revoked: Children[Counter] = Children(CERTIFICATES_REVOKED)

CRL_THIS_UPDATE = Gauge(
    "acmegate_crl_this_update_timestamp_seconds", "thisUpdate of the CA's newest CRL.", ["ca"]
)
CRL_NEXT_UPDATE = Gauge(
    "acmegate_crl_next_update_timestamp_seconds",
    "nextUpdate of the CA's newest CRL: relying parties refuse every certificate after it.",
    ["ca"],
)


def newest_crl(ca: str, *, this_update: datetime, next_update: datetime) -> None:
    """Record the validity of the CA's newest CRL."""
    CRL_THIS_UPDATE.labels(ca).set(this_update.timestamp())
    CRL_NEXT_UPDATE.labels(ca).set(next_update.timestamp())


# --- exposition ------------------------------------------------------------------------------


def exposition() -> bytes:
    """Every metric of this process in Prometheus' text format."""
    return generate_latest(REGISTRY)
