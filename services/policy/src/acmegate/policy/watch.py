"""Watched devices (``policy.watched_devices``): who holds certificates under Revoke On Failure.

The signer owns the certificates and the policy service must not read ``pki``; but it knows
which devices it approved under a lookup policy with ``revoke_on_failure``, and that is what
the periodic re-check needs (:mod:`acmegate.policy.recheck`). The approval is recorded in the
same statement as the lookup audit (audit.py), so it costs the hot path no round trip.

Replicas share the work: a re-check claims due rows with ``FOR UPDATE SKIP LOCKED`` and moves
their ``next_check_at`` forward in the same statement (a lease), so no two replicas check one
device in the same round, and a replica that dies mid-round only delays its rows by a round.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from acmegate.common.messages import EnrollmentRecord
from acmegate.policy.lookups import LookupEvent
from acmegate.policy.sources.base import IdentityKind


@dataclass(frozen=True, slots=True)
class Watch:
    """One approved device: how to look it up again, and how the signer knows it."""

    lookup_policy: str
    identity_kind: IdentityKind
    identity: str
    device_serial: str
    order_id: str


def watch_for(
    order_id: str, record: EnrollmentRecord, events: Sequence[LookupEvent]
) -> Watch | None:
    """The watch an approval calls for: under Revoke On Failure, with an attested serial
    (what the signer revokes by) and the lookup that found the device; else ``None``."""
    if not record.revoke_on_failure or record.lookup_policy is None:
        return None
    serial = record.device.serial_number if record.device is not None else None
    found = [e for e in events if e.lookup_policy == record.lookup_policy and e.outcome == "found"]
    if not serial or not found:
        return None
    event = found[-1]
    return Watch(record.lookup_policy, event.kind, event.identity, serial, order_id)


# The upsert of an approval, appended to the audit insert as a second data-modifying CTE.
# Parameters continue the audit's $1..$10: $11 policy, $12 kind, $13 identity, $14 serial,
# $15 first re-check. A closed watch (revoked earlier) reopens; an open one keeps its turn.
WATCH_UPSERT = """
INSERT INTO policy.watched_devices AS w
    (lookup_policy, identity_kind, identity, device_serial, order_id, first_approved,
     last_approved, next_check_at)
VALUES ($11, $12, $13, $14, $2, $1, $1, $15)
ON CONFLICT (lookup_policy, identity_kind, identity) DO UPDATE
   SET device_serial = EXCLUDED.device_serial,
       order_id = EXCLUDED.order_id,
       last_approved = EXCLUDED.last_approved,
       next_check_at = CASE WHEN w.closed_at IS NULL
                            THEN LEAST(w.next_check_at, EXCLUDED.next_check_at)
                            ELSE EXCLUDED.next_check_at END,
       closed_at = NULL,
       closed_reason = NULL
"""


def _watch_of(row: asyncpg.Record) -> Watch:
    """A claimed row (the RETURNING list both claims share) as a :class:`Watch`."""
    return Watch(
        row["lookup_policy"],
        row["identity_kind"],
        row["identity"],
        row["device_serial"],
        row["order_id"],
    )


_CLAIM = """
UPDATE policy.watched_devices AS w
   SET next_check_at = $2
  FROM (SELECT lookup_policy, identity_kind, identity
          FROM policy.watched_devices
         WHERE closed_at IS NULL AND next_check_at <= $1 AND lookup_policy = ANY($3::text[])
         ORDER BY next_check_at
         LIMIT $4
           FOR UPDATE SKIP LOCKED) AS due
 WHERE (w.lookup_policy, w.identity_kind, w.identity)
     = (due.lookup_policy, due.identity_kind, due.identity)
RETURNING w.lookup_policy, w.identity_kind, w.identity, w.device_serial, w.order_id
"""


async def claim_due(
    pool: asyncpg.Pool,
    *,
    now: datetime,
    lease_until: datetime,
    lookup_policies: Sequence[str],
    limit: int,
) -> list[Watch]:
    """Up to ``limit`` open watches due by ``now``, leased until ``lease_until``."""
    rows = await pool.fetch(_CLAIM, now, lease_until, list(lookup_policies), limit)
    return [_watch_of(row) for row in rows]


# A webhook's devices: their open watches, due or not, leased like a round's (no other
# replica checks them meanwhile). Matched by attested serial or by the looked-up identity
# (a UDID lookup), upper-cased as Apple and Jamf write both.
_CLAIM_DEVICES = """
UPDATE policy.watched_devices AS w
   SET next_check_at = GREATEST(w.next_check_at, $1)
  FROM (SELECT lookup_policy, identity_kind, identity
          FROM policy.watched_devices
         WHERE closed_at IS NULL AND lookup_policy = ANY($2::text[])
           AND (upper(device_serial) = ANY($3::text[]) OR upper(identity) = ANY($3::text[]))
         LIMIT $4
           FOR UPDATE SKIP LOCKED) AS hit
 WHERE (w.lookup_policy, w.identity_kind, w.identity)
     = (hit.lookup_policy, hit.identity_kind, hit.identity)
RETURNING w.lookup_policy, w.identity_kind, w.identity, w.device_serial, w.order_id
"""


async def claim_devices(
    pool: asyncpg.Pool,
    *,
    lease_until: datetime,
    lookup_policies: Sequence[str],
    identities: Sequence[str],
    limit: int,
) -> list[Watch]:
    """The open watches of the devices named by serial or UDID, leased until ``lease_until``."""
    rows = await pool.fetch(
        _CLAIM_DEVICES,
        lease_until,
        list(lookup_policies),
        sorted({identity.upper() for identity in identities}),
        limit,
    )
    return [_watch_of(row) for row in rows]


async def record_checks(
    pool: asyncpg.Pool, *, now: datetime, checked: Sequence[tuple[Watch, str]]
) -> None:
    """Note the outcome of watches that stay open (one statement for the round)."""
    if not checked:
        return
    await pool.execute(
        """
        UPDATE policy.watched_devices AS w
           SET last_checked_at = $1, last_outcome = c.outcome
          FROM unnest($2::text[], $3::text[], $4::text[], $5::text[])
               AS c(lookup_policy, identity_kind, identity, outcome)
         WHERE (w.lookup_policy, w.identity_kind, w.identity)
             = (c.lookup_policy, c.identity_kind, c.identity)
        """,
        now,
        [w.lookup_policy for w, _ in checked],
        [w.identity_kind for w, _ in checked],
        [w.identity for w, _ in checked],
        [outcome for _, outcome in checked],
    )


async def close_watch(
    pool: asyncpg.Pool, watch: Watch, *, now: datetime, outcome: str, reason: str
) -> bool:
    """Close a watch after its device's certificates were sent for revocation.

    Only if no newer approval replaced it meanwhile (``order_id`` unchanged): that approval
    found the device passing and opened a watch of its own. Returns whether it closed.
    """
    status = await pool.execute(
        """
        UPDATE policy.watched_devices
           SET closed_at = $5, closed_reason = $6, last_checked_at = $5, last_outcome = $7
         WHERE lookup_policy = $1 AND identity_kind = $2 AND identity = $3 AND order_id = $4
           AND closed_at IS NULL
        """,
        watch.lookup_policy,
        watch.identity_kind,
        watch.identity,
        watch.order_id,
        now,
        reason,
        outcome,
    )
    return bool(status.endswith(" 1"))
