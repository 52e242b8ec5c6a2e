"""External Account Binding (RFC 8555 §7.3.4): admin-issued key ids and HMAC keys that tie a
new ACME account to an account the organisation knows.

An administrator creates a key (``acmegate admin eab create``) and hands its id and HMAC key to
the operator of a server; the server's ACME client signs its account key with the HMAC key in
newAccount's ``externalAccountBinding``, a JWS whose protected header names an HS256/384/512
``alg``, the ``kid`` and the newAccount ``url``, and whose payload is the account key (the outer
``jwk``). The key binds one account, once; a revoked key binds none.

The HMAC key is never stored: it is HMAC-SHA256(EAB secret, key id), the EAB secret being
``acme.eab_secret`` mixed with a random value kept in ``acme.settings`` (as the nonce key,
nonces.py). A copy of the database alone therefore signs no binding, the key is shown once at
creation, and every replica derives the same key without reading it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import msgspec

from acmegate.common.errors import AcmeError, ErrorKind, malformed, unauthorized
from acmegate.common.ids import b64url, b64url_decode
from acmegate.common.json_input import JsonInputError, decode_json

KEY_ID_PREFIX = "eab-"
_SETTING = "eab_secret"
# RFC 8555 §7.3.4: "MUST indicate a MAC-based algorithm"; RFC 7518 §3.2 names these three.
_MAC_HASHES = {"HS256": "sha256", "HS384": "sha384", "HS512": "sha512"}


def required() -> AcmeError:
    return AcmeError(
        ErrorKind.EXTERNAL_ACCOUNT_REQUIRED,
        "this directory requires an external account binding; ask the administrator for an "
        "EAB key id and HMAC key",
    )


def new_key_id() -> str:
    return KEY_ID_PREFIX + b64url(secrets.token_bytes(12))


@dataclass
class EabSecret:
    """The secret every EAB HMAC key is derived from, shared by all replicas."""

    configured: bytes | None = None
    _secret: bytes = field(default=b"", repr=False)

    async def load(self, pool: asyncpg.Pool) -> None:
        """Read the stored half (created once, by whichever replica starts first)."""
        await pool.execute(
            "INSERT INTO acme.settings (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            _SETTING,
            secrets.token_bytes(32),
        )
        stored = await pool.fetchval("SELECT value FROM acme.settings WHERE name = $1", _SETTING)
        assert isinstance(stored, bytes)
        if self.configured is not None:
            stored = hmac.new(self.configured, stored, hashlib.sha256).digest()
        self._secret = stored

    def hmac_key(self, key_id: str) -> bytes:
        """The HMAC key of ``key_id`` (256 bits)."""
        assert self._secret, "EabSecret.load() has not run"
        return hmac.new(self._secret, b"acmegate eab\0" + key_id.encode(), hashlib.sha256).digest()


class _Flattened(msgspec.Struct, forbid_unknown_fields=True):
    protected: str
    payload: str
    signature: str


def verify_binding(secret: EabSecret, binding: Any, *, url: str, jwk: dict[str, Any]) -> str:
    """The key id of ``binding`` (newAccount's ``externalAccountBinding``) if it is a JWS MACed
    with that key over ``jwk`` for ``url``; else ``malformed`` (its form) or ``unauthorized``
    (its MAC). Whether the key exists, is revoked or was used is decided when it binds."""
    try:
        flattened = msgspec.convert(binding, _Flattened)
        header_bytes = b64url_decode(flattened.protected)
        payload = b64url_decode(flattened.payload)
        signature = b64url_decode(flattened.signature)
        header = decode_json(header_bytes)
        inner_jwk = decode_json(payload)
    except (msgspec.ValidationError, ValueError, JsonInputError) as exc:
        raise malformed(f"externalAccountBinding is not a flattened JWS: {exc}") from exc
    if not isinstance(header, dict):
        raise malformed("externalAccountBinding: the protected header is not a JSON object")
    alg = header.get("alg")
    if alg not in _MAC_HASHES:
        raise malformed(f"externalAccountBinding: 'alg' must be HS256, HS384 or HS512, not {alg!r}")
    # §7.3.4: the header carries alg, kid and url, and MUST NOT carry a nonce.
    if "nonce" in header:
        raise malformed("externalAccountBinding: the protected header must not carry a nonce")
    key_id = header.get("kid")
    if not isinstance(key_id, str) or not key_id:
        raise malformed("externalAccountBinding: the protected header lacks 'kid'")
    if header.get("url") != url:
        raise malformed("externalAccountBinding: 'url' must be the newAccount URL")
    if inner_jwk != jwk:
        raise malformed("externalAccountBinding: the payload must be the account key (the 'jwk')")
    signing_input = flattened.protected.encode("ascii") + b"." + flattened.payload.encode("ascii")
    expected = hmac.digest(secret.hmac_key(key_id), signing_input, _MAC_HASHES[alg])
    if not hmac.compare_digest(expected, signature):
        raise unauthorized(f"externalAccountBinding: the MAC of key {key_id!r} does not verify")
    return key_id


def refused(key_id: str, known: bool, revoked: bool) -> AcmeError:
    """Why the key ``key_id`` (whose MAC verified) did not bind the new account."""
    if not known:
        return unauthorized(f"unknown EAB key {key_id!r}")
    if revoked:
        return unauthorized(f"EAB key {key_id!r} is revoked")
    return unauthorized(f"EAB key {key_id!r} has already bound an account")
