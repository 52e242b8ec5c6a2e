"""A pipeline stage measured: its duration in ``/metrics`` and, with tracing on, its span."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from prometheus_client import Histogram

from acmegate.common import tracing


@contextlib.contextmanager
def stage(scope: str, name: str, duration: Histogram) -> Iterator[None]:
    """Time the block into ``duration`` (a resolved child of ``acmegate_stage_duration_seconds``)
    and trace it as span ``name`` of ``scope`` (``acmegate.<service>``)."""
    started = time.perf_counter()
    try:
        with tracing.span(scope, name):
            yield
    finally:
        duration.observe(time.perf_counter() - started)
