"""The rate limits of the public endpoints (issue #8): what is limited, by how much, and the
``rateLimited`` answer (RFC 8555 §6.6: status 429 with ``Retry-After``).

Each limit is a GCRA (generic cell rate algorithm, the algorithm of Boulder's rate limits): a
subject may spend ``limit`` events in a burst and regains one every ``period / limit``. The
state of a subject is one timestamp, its *theoretical arrival time* (``tat``), kept in
``acme.rate_limits`` so that every frontend replica enforces the same budget:

- an event at ``now`` is allowed when ``tat - now <= period - period/limit`` (the tolerance);
  taking it moves ``tat`` to ``max(tat, now) + period/limit``;
- a refused event waits ``tat - tolerance - now`` (the ``Retry-After``).

The SQL that reads and moves ``tat`` lives in ``db/rate_limits.py`` and is folded into the
statements the requests already run (no extra round trip on the enrollment path).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from acmegate.common import metrics
from acmegate.common.config import seconds
from acmegate.common.config.model import RateLimit, RateLimitsConfig
from acmegate.common.errors import AcmeError, ErrorKind


@dataclass(frozen=True, slots=True)
class Limit:
    """One configured limit: ``limit`` events of ``what`` per ``period``, per subject."""

    name: str  # the row name in acme.rate_limits, and the configuration key
    what: str  # for the problem detail: "new accounts per client address"
    limit: int
    period: timedelta
    period_text: str  # as configured, e.g. "1h"

    @classmethod
    def from_config(cls, name: str, what: str, config: RateLimit | None) -> Limit | None:
        if config is None:
            return None
        period = config.period
        text = period if isinstance(period, str) else f"{period}s"
        return cls(name, what, config.limit, timedelta(seconds=seconds(period)), text)

    @property
    def emission(self) -> timedelta:
        """The time one event costs: the budget regains one event per emission interval."""
        return self.period / self.limit

    @property
    def tolerance(self) -> timedelta:
        """How far ``tat`` may run ahead of now while events are still allowed."""
        return self.period - self.emission

    def is_over(self, tat: datetime | None, now: datetime) -> bool:
        """Whether a subject whose state is ``tat`` may not spend an event at ``now``."""
        return tat is not None and tat - now > self.tolerance

    def retry_after(self, tat: datetime | None, now: datetime) -> int:
        """Whole seconds until the next event is allowed (at least 1)."""
        wait = (tat - self.tolerance - now) if tat is not None else self.emission
        return max(1, math.ceil(wait.total_seconds()))

    def exceeded(self, subject: str, tat: datetime | None, now: datetime) -> AcmeError:
        """The ``rateLimited`` error of ``subject`` whose state is ``tat`` (counted in
        ``/metrics`` by limit)."""
        metrics.rate_limit_refusals(self.name).inc()
        retry_after = self.retry_after(tat, now)
        return AcmeError(
            ErrorKind.RATE_LIMITED,
            f"rate limit reached: {self.limit} {self.what} per {self.period_text} "
            f"({subject}); retry after {retry_after} s",
            retry_after=retry_after,
        )


@dataclass(frozen=True, slots=True)
class Limits:
    """The configured limits (``None``: that limit is off), built once at start."""

    new_accounts: Limit | None
    new_orders: Limit | None
    failed_validations: Limit | None
    failed_admin_logins: Limit | None

    @classmethod
    def from_config(cls, config: RateLimitsConfig) -> Limits:
        return cls(
            new_accounts=Limit.from_config(
                "new_accounts_per_ip", "new accounts per client address", config.new_accounts_per_ip
            ),
            new_orders=Limit.from_config(
                "new_orders_per_account", "new orders per account", config.new_orders_per_account
            ),
            failed_validations=Limit.from_config(
                "failed_validations_per_device",
                "failed validations per device",
                config.failed_validations_per_device,
            ),
            failed_admin_logins=Limit.from_config(
                "failed_admin_logins_per_ip",
                "failed admin logins per client address",
                config.failed_admin_logins_per_ip,
            ),
        )
