"""Statuses of RFC 8555 §7.1.6 objects, and what a stored status means when read.

Every change of a stored status is a compare-and-set in SQL (``UPDATE … WHERE status =
expected``); this module only names the states and derives the presented status (an expired
pending order reads as invalid without a write).
"""

from __future__ import annotations

import enum
from datetime import datetime


class AccountStatus(enum.StrEnum):
    VALID = "valid"
    DEACTIVATED = "deactivated"
    REVOKED = "revoked"


class OrderStatus(enum.StrEnum):
    PENDING = "pending"
    READY = "ready"
    PROCESSING = "processing"
    VALID = "valid"
    INVALID = "invalid"


class AuthzStatus(enum.StrEnum):
    PENDING = "pending"
    VALID = "valid"
    INVALID = "invalid"
    DEACTIVATED = "deactivated"
    EXPIRED = "expired"
    REVOKED = "revoked"


class ChallengeStatus(enum.StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    VALID = "valid"
    INVALID = "invalid"


def presented_order_status(stored: OrderStatus, expires: datetime, now: datetime) -> OrderStatus:
    """RFC 8555 §7.1.6: a pending or ready order past its expiry is invalid."""
    if stored in (OrderStatus.PENDING, OrderStatus.READY) and expires <= now:
        return OrderStatus.INVALID
    return stored


def presented_authz_status(stored: AuthzStatus, expires: datetime, now: datetime) -> AuthzStatus:
    """RFC 8555 §7.1.6: a pending or valid authorization past its expiry is expired."""
    if stored in (AuthzStatus.PENDING, AuthzStatus.VALID) and expires <= now:
        return AuthzStatus.EXPIRED
    return stored
