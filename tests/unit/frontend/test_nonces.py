"""Anti-replay nonces (RFC 8555 §6.5): issued without I/O, checked in memory, shared by every
replica through the key in ``acme.settings``, rotated when the used-nonce table was lost."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from acmegate.common.clock import FixedClock
from acmegate.common.db import create_pool
from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.common.ids import b64url, b64url_decode
from acmegate.common.migrations import migrate
from acmegate.frontend.nonces import NonceService
from acmegate.frontend.service import migrations

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LIFETIME = 300


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    connection = await asyncpg.connect(database_url)
    try:
        await migrate(connection, *migrations())
    finally:
        await connection.close()
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


async def replica(
    pool: asyncpg.Pool, clock: FixedClock, configured_key: bytes | None = None
) -> NonceService:
    service = NonceService(lifetime=LIFETIME, clock=clock, configured_key=configured_key)
    await service.refresh(pool)
    return service


def refused(service: NonceService, nonce: str) -> AcmeError:
    with pytest.raises(AcmeError) as caught:
        service.check(nonce)
    assert caught.value.kind is ErrorKind.BAD_NONCE
    return caught.value


async def test_an_issued_nonce_checks_out_with_its_expiry(pool: asyncpg.Pool) -> None:
    nonces = await replica(pool, FixedClock(NOW))
    first, second = nonces.issue(), nonces.issue()
    assert first != second
    # base64url without padding (RFC 8555 §6.5.1), of id ‖ expiry ‖ MAC.
    assert "=" not in first and len(b64url_decode(first)) == 24
    checked = nonces.check(first)
    assert checked.expires == NOW + timedelta(seconds=LIFETIME)
    assert checked.id != nonces.check(second).id


async def test_a_nonce_is_refused_once_it_expires(pool: asyncpg.Pool) -> None:
    clock = FixedClock(NOW)
    nonces = await replica(pool, clock)
    nonce = nonces.issue()
    clock.at = NOW + timedelta(seconds=LIFETIME - 1)
    nonces.check(nonce)
    clock.at = NOW + timedelta(seconds=LIFETIME)
    assert refused(nonces, nonce).detail == "JWS nonce has expired"


async def test_a_forged_or_damaged_nonce_is_refused(pool: asyncpg.Pool) -> None:
    nonces = await replica(pool, FixedClock(NOW))
    raw = bytearray(b64url_decode(nonces.issue()))
    # A later expiry under the same MAC: the MAC covers the id and the expiry.
    longer = bytearray(raw)
    longer[11] ^= 0x01
    flipped_mac = bytearray(raw)
    flipped_mac[-1] ^= 0x80
    for forged in (bytes(longer), bytes(flipped_mac), bytes(raw[:-1]), bytes(raw) + b"\0"):
        assert refused(nonces, b64url(forged)).detail == "JWS has an invalid anti-replay nonce"
    for garbage in ("", "not base64!", "AAAA"):
        refused(nonces, garbage)


async def test_replicas_share_the_key_a_configured_key_is_mixed_in(pool: asyncpg.Pool) -> None:
    clock = FixedClock(NOW)
    one, two = await replica(pool, clock), await replica(pool, clock)
    # Any replica redeems any replica's nonce: the key comes from acme.settings.
    two.check(one.issue())
    one.check(two.issue())
    configured = await replica(pool, clock, configured_key=b"operator-key")
    other = await replica(pool, clock, configured_key=b"another-key")
    configured.check(configured.issue())
    refused(configured, one.issue())
    refused(other, configured.issue())


async def test_a_lost_used_nonce_table_rotates_the_key(pool: asyncpg.Pool) -> None:
    clock = FixedClock(NOW)
    nonces = await replica(pool, clock)
    before = nonces.issue()
    await nonces.refresh(pool)
    nonces.check(before)  # nothing was lost: the key stays
    # A database crash empties the UNLOGGED table, sentinel included: nonces issued before
    # might have been used already, so they must die with the old key.
    await pool.execute("TRUNCATE acme.used_nonces")
    await nonces.refresh(pool)
    refused(nonces, before)
    nonces.check(nonces.issue())


async def test_purge_forgets_expired_used_nonces_only(pool: asyncpg.Pool) -> None:
    await replica(pool, FixedClock(NOW))
    await pool.executemany(
        "INSERT INTO acme.used_nonces (id, expires) VALUES ($1, $2)",
        [(1, NOW - timedelta(seconds=1)), (2, NOW + timedelta(seconds=1))],
    )
    assert await NonceService.purge(pool, NOW) == 1
    left = {row["id"] for row in await pool.fetch("SELECT id FROM acme.used_nonces")}
    assert left == {0, 2}  # 0: the sentinel that tells a lost table from an empty one
