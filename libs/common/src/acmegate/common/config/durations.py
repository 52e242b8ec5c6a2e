"""Durations in the YAML: an integer of seconds or ``<n>s|m|h|d|y`` (``y`` = 365 days)."""

from __future__ import annotations

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "y": 365 * 86400}
_PATTERN = re.compile(r"^\s*(\d+)\s*([smhdy])\s*$")


def parse_duration(value: int | str) -> int:
    """Seconds in ``value``; raises ``ValueError`` naming the accepted forms."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return value
    if isinstance(value, str):
        match = _PATTERN.match(value)
        if match:
            return int(match.group(1)) * _UNITS[match.group(2)]
    raise ValueError(f"invalid duration {value!r}: use seconds or a number with s, m, h, d or y")
