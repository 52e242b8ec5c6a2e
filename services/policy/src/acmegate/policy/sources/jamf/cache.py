"""A small time-to-live cache: lookups of passing devices, and department/building/site names.

Bounded (the oldest entry goes first when full) so a flood of distinct serials cannot grow
the process; expiry is checked on read against an injected monotonic clock.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Entries live ``ttl`` seconds; ``ttl`` 0 keeps nothing."""

    def __init__(
        self, ttl: float, *, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        """The live value under ``key``, or ``None`` (an expired entry is dropped)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._entries[key]
            return None
        return entry[1]

    def put(self, key: K, value: V) -> None:
        """Keep ``value`` for ``ttl`` seconds from now."""
        if self.ttl <= 0:
            return
        self._entries.pop(key, None)
        self._entries[key] = (self._clock() + self.ttl, value)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def evict(self, key: K) -> None:
        """Forget ``key`` (a fresh answer contradicted it)."""
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)
