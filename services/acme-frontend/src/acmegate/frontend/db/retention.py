"""The purge statements of the retention step (``retention.py``): each deletes at most
``$2`` rows older than the cutoff ``$1``, oldest first, and returns how many it deleted.

Rows are chosen ``FOR UPDATE SKIP LOCKED`` (``acmegate.common.purge``). What must never go:

- an order that is in flight: ``processing``, or with an outbox row, or whose challenge is
  being validated (the sweeper and the results consumer still need it);
- an order whose delivered certificate is kept (``acme.certificates`` references it), hence
  an account holding such an order: certificate rows are deleted only after the certificate
  expired (``not_after``), so a valid certificate keeps its chain, its order (the certificate
  URL) and its account (revokeCert by the account key, RFC 8555 §7.6).
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from acmegate.common.purge import oldest_first

# Delivered chains of certificates that expired before the cutoff (NULL: delivered before
# acmegate recorded notAfter; never purged).
_CERTIFICATES = oldest_first("acme.certificates", "not_after")

# Orders that expired before the cutoff, with their authorizations and challenges, in one
# statement (the foreign keys are checked when the statement ends, by then all three went).
_ORDERS = """
    WITH doomed AS (
        SELECT o.id FROM acme.orders o
        WHERE o.expires < $1 AND o.status <> 'processing'
          AND NOT EXISTS (SELECT 1 FROM acme.certificates c WHERE c.order_id = o.id)
          AND NOT EXISTS (SELECT 1 FROM acme.outbox ob WHERE ob.id = 'order:' || o.id)
          AND NOT EXISTS (
              SELECT 1 FROM acme.authorizations a
              JOIN acme.challenges ch ON ch.authz_id = a.id
              WHERE a.order_id = o.id AND ch.status = 'processing'
          )
        ORDER BY o.expires LIMIT $2 FOR UPDATE OF o SKIP LOCKED
    ), authz AS (
        SELECT a.id FROM acme.authorizations a WHERE a.order_id IN (SELECT id FROM doomed)
    ), challenges AS (
        DELETE FROM acme.challenges WHERE authz_id IN (SELECT id FROM authz)
    ), authorizations AS (
        DELETE FROM acme.authorizations WHERE id IN (SELECT id FROM authz)
    ), orders AS (
        DELETE FROM acme.orders WHERE id IN (SELECT id FROM doomed) RETURNING 1
    )
    SELECT count(*) FROM orders
"""

# Accounts created before the cutoff that hold no order. Every delivered certificate belongs
# to an order of its account (acme.certificates.order_id) and such an order is kept while the
# certificate row is, so an account without orders holds no certificate either. An account an
# EAB key created is kept: the key cannot bind another (RFC 8555 §7.3.4).
_ACCOUNTS = oldest_first(
    "acme.accounts",
    "created_at",
    condition="AND t.eab_key_id IS NULL "
    "AND NOT EXISTS (SELECT 1 FROM acme.orders o WHERE o.account_id = t.id)",
)

_ENROLLMENT_EVENTS = oldest_first("acme.enrollment_events", "at")

# Rate-limit rows whose tat has passed: a full budget, the same as no row (rate_limits.py).
_RATE_LIMITS = oldest_first("acme.rate_limits", "tat", key=("name", "subject"))


async def _purge(pool: asyncpg.Pool, sql: str, cutoff: datetime, batch: int) -> int:
    deleted: int = await pool.fetchval(sql, cutoff, batch)
    return deleted


async def purge_certificates(pool: asyncpg.Pool, cutoff: datetime, batch: int) -> int:
    """Delivered chains of certificates that expired before ``cutoff``."""
    return await _purge(pool, _CERTIFICATES, cutoff, batch)


async def purge_orders(pool: asyncpg.Pool, cutoff: datetime, batch: int) -> int:
    """Orders that expired before ``cutoff`` and nothing needs, with their authorizations and
    challenges; returns the number of orders."""
    return await _purge(pool, _ORDERS, cutoff, batch)


async def purge_accounts(pool: asyncpg.Pool, cutoff: datetime, batch: int) -> int:
    """Accounts created before ``cutoff`` that hold no order."""
    return await _purge(pool, _ACCOUNTS, cutoff, batch)


async def purge_enrollment_events(pool: asyncpg.Pool, cutoff: datetime, batch: int) -> int:
    """Enrollment events from before ``cutoff``."""
    return await _purge(pool, _ENROLLMENT_EVENTS, cutoff, batch)


async def purge_rate_limits(pool: asyncpg.Pool, cutoff: datetime, batch: int) -> int:
    """Rate-limit rows whose budget is full again at ``cutoff``."""
    return await _purge(pool, _RATE_LIMITS, cutoff, batch)
