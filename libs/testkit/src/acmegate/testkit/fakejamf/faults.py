"""Run-time fault injection and what the fake server observed (docs/jamf.md §7).

Tests flip these on a live server (the pytest fixture hands out the :class:`FakeJamf`), and
``POST /_fake/faults`` does the same for a server run with ``acmegate fake-jamf``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import msgspec

# Jamf's guidance (docs/jamf.md §8.6): "no more than 5 concurrent connections".
CONNECTION_GUIDANCE = 5
# The largest page Jamf returns (jamf-pro-sdk-python: "maximum value is 2000"; docs/jamf.md §8.3).
MAX_PAGE_SIZE = 2000


@dataclass
class Faults:
    """What goes wrong, from now on."""

    # Answer this many of the next API requests with ``error_status``.
    fail_next: int = 0
    # Answer this fraction of API requests with ``error_status`` (seeded, reproducible).
    error_rate: float = 0.0
    error_status: int = 503
    # Seconds every API request waits before it is answered (a slow Jamf).
    delay: float = 0.0
    # Drop one record from every page of more than one (a paginated read while Jamf changes).
    paging_gaps: bool = False
    # Set the Jamf Cloud sticky-session cookie on every answer.
    sticky_cookie: bool = False
    # The most records one page holds, whatever ``page-size`` asks (Jamf: 2000).
    max_page_size: int = MAX_PAGE_SIZE
    rng: random.Random = field(default_factory=lambda: random.Random(3))  # noqa: S311 - faults, not secrets

    def should_fail(self) -> bool:
        if self.fail_next > 0:
            self.fail_next -= 1
            return True
        return self.error_rate > 0 and self.rng.random() < self.error_rate

    def update(self, values: dict[str, object]) -> None:
        """Set the named fields; ``KeyError`` for an unknown name, ``ValueError`` for a value
        of the wrong type."""
        for name, value in values.items():
            kind = _SETTABLE.get(name)
            if kind is None:
                raise KeyError(name)
            try:
                setattr(self, name, msgspec.convert(value, kind, strict=False))
            except msgspec.ValidationError as exc:
                raise ValueError(f"{name}: {exc}") from exc


_SETTABLE: dict[str, type] = {
    "fail_next": int,
    "error_rate": float,
    "error_status": int,
    "delay": float,
    "paging_gaps": bool,
    "sticky_cookie": bool,
    "max_page_size": int,
}


@dataclass(frozen=True)
class RequestRecord:
    """One API request as the fake saw it."""

    method: str
    path: str
    query: str
    status: int
    user_agent: str | None
    authorization: str | None  # the scheme only ("Bearer", "Basic")


@dataclass
class Stats:
    """Concurrency and traffic: what a test asserts the client's manners on."""

    in_flight: int = 0
    max_in_flight: int = 0
    # Open TCP connections seen when a request arrived (keep-alive ones included).
    max_connections: int = 0
    # Requests that arrived while more than CONNECTION_GUIDANCE were in flight or connected.
    over_limit: int = 0
    requests: list[RequestRecord] = field(default_factory=list)

    def paths(self, prefix: str = "") -> list[str]:
        """The paths requested, in order (optionally those starting with ``prefix``)."""
        return [r.path for r in self.requests if r.path.startswith(prefix)]

    def as_dict(self) -> dict[str, object]:
        return {
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "max_connections": self.max_connections,
            "over_limit": self.over_limit,
            "requests": len(self.requests),
        }
