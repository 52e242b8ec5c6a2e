"""How long a client is told to wait before asking again (``Retry-After``, in seconds).

RFC 8555 §7.5.1 and §7.4: a client polls a challenge or an order that is still
``processing`` after the time the header gives; §6.6 (rate limits) and RFC 9110 §10.2.3
(503) use it for "come back later".
"""

from __future__ import annotations

# A challenge or order still `processing`: results usually arrive within a second (Boulder
# answers 3 for orders; we wait up to server.finalize_wait before answering at all).
PROCESSING = 1
# The service cannot answer now (a stage is down, the client is rate limited).
UNAVAILABLE = 5


def header(seconds: int) -> str:
    """The header value for ``seconds`` (delta-seconds)."""
    return str(seconds)
