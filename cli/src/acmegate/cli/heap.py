"""The cyclic garbage collector, tuned once the services have started (issue #13).

Start-up leaves a large heap that lives as long as the process (imported modules, the
configuration, CA material, compiled statements). Without help, every full collection walks
all of it again; :func:`settle` moves it to the permanent generation (``gc.freeze``, Python's
documented way to exclude long-lived start-up objects) and lets the young generation fill
further before a collection, so that a request's short-lived objects are mostly freed by
reference counting before the collector ever looks at them.
"""

from __future__ import annotations

import gc

# The young generation's allocation budget (CPython's default is 700): a few requests'
# worth of container objects. The older generations keep their default ratios.
YOUNG_THRESHOLD = 10_000


def settle() -> None:
    """Call once, after start-up: collect, then freeze what survived."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
