"""Anti-replay nonces (RFC 8555 §6.5) that work across frontend replicas without stickiness.

A nonce is stateless until it is used: ``base64url(id ‖ expiry ‖ HMAC(key, id ‖ expiry)[:12])``
with a random 64-bit id. Issuing one costs no I/O; redeeming one checks the MAC and expiry in
memory, then inserts the id into ``acme.used_nonces`` — in the same SQL statement that loads
the account (see ``db/accounts.py``), so replay protection adds no round trip. Any replica can
redeem any replica's nonce because they share the key (``acme.settings`` or the configured
``acme.nonce_key``) and the table.

``used_nonces`` is UNLOGGED (no WAL write per request). A database crash empties it; the
sentinel row (id 0) then goes missing, and :meth:`NonceService.refresh` — run at start and by
the sweeper — rotates the key, so nonces issued before the crash die with it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg

from acmegate.common.clock import Clock
from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.common.ids import b64url, b64url_decode

_KEY_SETTING = "nonce_key"
_SENTINEL_ID = 0
_LOCK_KEY = 0x6E6F6E6365  # "nonce"
_MAC_LEN = 12
_RAW_LEN = 8 + 4 + _MAC_LEN


@dataclass(frozen=True, slots=True)
class RedeemableNonce:
    """A nonce whose MAC and expiry checked out; the database decides if it was used."""

    id: int
    expires: datetime


def bad_nonce(detail: str = "JWS has an invalid anti-replay nonce") -> AcmeError:
    return AcmeError(ErrorKind.BAD_NONCE, detail)


@dataclass
class NonceService:
    lifetime: int  # seconds
    clock: Clock
    configured_key: bytes | None = None
    _key: bytes = field(default=b"", repr=False)

    def issue(self) -> str:
        nonce_id = secrets.randbits(63) or 1
        expires = int(self.clock.now().timestamp()) + self.lifetime
        body = struct.pack(">QI", nonce_id, expires)
        return b64url(body + self._mac(body))

    def check(self, nonce: str) -> RedeemableNonce:
        """MAC and expiry of ``nonce`` (no I/O); raises ``badNonce``."""
        try:
            raw = b64url_decode(nonce)
        except ValueError as exc:
            raise bad_nonce() from exc
        if len(raw) != _RAW_LEN:
            raise bad_nonce()
        body, mac = raw[:12], raw[12:]
        if not hmac.compare_digest(mac, self._mac(body)):
            raise bad_nonce()
        nonce_id, expires = struct.unpack(">QI", body)
        if expires <= self.clock.now().timestamp():
            raise bad_nonce("JWS nonce has expired")
        return RedeemableNonce(nonce_id, datetime.fromtimestamp(expires, UTC))

    def _mac(self, body: bytes) -> bytes:
        assert self._key, "NonceService.refresh() has not run"
        # hmac.digest: OpenSSL's one-shot HMAC, several times cheaper than hmac.new().
        return hmac.digest(self._key, body, "sha256")[:_MAC_LEN]

    async def refresh(self, pool: asyncpg.Pool) -> None:
        """Load the shared key; rotate it if the used-nonce table lost its rows."""
        async with pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
            emptied = await connection.fetchval(
                "INSERT INTO acme.used_nonces (id, expires) VALUES ($1, 'infinity') "
                "ON CONFLICT DO NOTHING RETURNING true",
                _SENTINEL_ID,
            )
            if emptied:
                await connection.execute(
                    "INSERT INTO acme.settings (name, value) VALUES ($1, $2) "
                    "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                    _KEY_SETTING,
                    secrets.token_bytes(32),
                )
            key = await connection.fetchval(
                "SELECT value FROM acme.settings WHERE name = $1", _KEY_SETTING
            )
            assert isinstance(key, bytes)
            # A configured key (acme.nonce_key) is mixed with the stored one, so that it
            # still rotates when the table is emptied.
            if self.configured_key is not None:
                key = hmac.new(self.configured_key, key, hashlib.sha256).digest()
            self._key = key

    @staticmethod
    async def purge(pool: asyncpg.Pool, now: datetime) -> int:
        """Forget used nonces that have expired anyway (run by the sweeper)."""
        result = await pool.execute(
            "DELETE FROM acme.used_nonces WHERE expires < $1 AND id <> $2", now, _SENTINEL_ID
        )
        return int(result.split()[-1])
