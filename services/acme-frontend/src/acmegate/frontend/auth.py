"""Authentication of ACME POST requests (RFC 8555 §6.2–6.5), shared by every POST route.

The order of checks: content type, size, JWS structure and algorithm, ``url`` equal to this
request's URL, nonce MAC and expiry (no I/O), then one statement that redeems the nonce and
loads the account, then the signature. ``jwk`` is accepted only where RFC 8555 allows it
(newAccount, revokeCert), ``kid`` everywhere else.

:func:`authenticate_deferred` may leave the nonce and the account's validity to the handler's
first statement when the account key is already known (one round trip fewer); what is left
travels as the non-optional gate of the :class:`DeferredRequest` (db/gate.py).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from acmegate.common.errors import AcmeError, ErrorKind, malformed, unauthorized
from acmegate.common.json_input import JsonInputError, decode_json
from acmegate.frontend import jws
from acmegate.frontend.context import Frontend
from acmegate.frontend.db import accounts as account_db
from acmegate.frontend.db.accounts import Account
from acmegate.frontend.db.gate import CHECKED, Checked, Gate
from acmegate.frontend.middleware import CORRELATION_ID
from acmegate.frontend.nonces import RedeemableNonce, bad_nonce
from acmegate.frontend.status import AccountStatus

JOSE_CONTENT_TYPE = "application/jose+json"


class KeyMode(enum.Enum):
    KID = "kid"  # an existing account signs (almost every request)
    # newAccount (a key not yet known signs) has its own entry: authenticate_new_account.
    EITHER = "either"  # revokeCert: the account key or the certificate's own key


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """A request whose JWS verified and whose nonce was fresh."""

    correlation_id: str
    payload: bytes
    header: dict[str, Any]
    key: jws.PublicKey
    thumbprint: str
    jwk: dict[str, Any] | None  # the `jwk` header, when the request carried one
    account: Account | None  # None only for a JWK request from a key without account

    @property
    def is_post_as_get(self) -> bool:
        """RFC 8555 §6.3: an empty payload (not "{}") means POST-as-GET."""
        return self.payload == b""

    def json(self) -> dict[str, Any]:
        """The payload as a JSON object ({} for POST-as-GET)."""
        if self.is_post_as_get:
            return {}
        try:
            value = decode_json(self.payload)
        except JsonInputError as exc:
            raise malformed(f"JWS payload is not acceptable JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise malformed("JWS payload must be a JSON object")
        return value

    def require_account(self) -> Account:
        if self.account is None:
            raise AcmeError(ErrorKind.ACCOUNT_DOES_NOT_EXIST, "no account exists for this key")
        return self.account


@dataclass(frozen=True, slots=True)
class DeferredRequest(SignedRequest):
    """A ``kid`` request whose signature verified; its nonce and account are checked by the
    first statement it hands ``gate`` to (:data:`~acmegate.frontend.db.gate.CHECKED` when
    authentication already checked them)."""

    gate: Gate | Checked


async def read_jws_body(request: web.Request, limit: int) -> bytes:
    content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type != JOSE_CONTENT_TYPE:
        raise AcmeError(
            ErrorKind.UNSUPPORTED_MEDIA_TYPE,
            f"ACME POST requests must have Content-Type {JOSE_CONTENT_TYPE}",
        )
    if request.content_length is not None and request.content_length > limit:
        raise AcmeError(ErrorKind.PAYLOAD_TOO_LARGE, f"request body exceeds {limit} bytes")
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise AcmeError(ErrorKind.PAYLOAD_TOO_LARGE, f"request body exceeds {limit} bytes") from exc


async def authenticate(request: web.Request, frontend: Frontend, mode: KeyMode) -> SignedRequest:
    """Check the JWS of ``request`` and redeem its nonce (one statement with the account)."""
    parsed, nonce, correlation_id = await _verified_envelope(request, frontend)
    header = parsed.header
    if "jwk" in header:
        if mode is KeyMode.KID:
            raise malformed("this resource requires a 'kid' header, not 'jwk'")
        jwk, key, thumbprint = _signed_by_jwk(parsed)
        redeemed = await account_db.redeem_with_key(frontend.pool, nonce, thumbprint)
        if not redeemed.fresh:
            raise bad_nonce()
        return SignedRequest(
            correlation_id, parsed.payload, header, key, thumbprint, jwk, redeemed.account
        )
    found, key = await _redeem_for_kid(frontend, parsed, nonce, _account_id(frontend, header))
    return SignedRequest(correlation_id, parsed.payload, header, key, found.thumbprint, None, found)


@dataclass(frozen=True, slots=True)
class KeyRequest:
    """A ``jwk`` request (newAccount) whose signature verified; its ``nonce`` is redeemed by
    the statement that looks up and creates the key's account (db/accounts.py)."""

    correlation_id: str
    payload: bytes
    key: jws.PublicKey
    thumbprint: str
    jwk: dict[str, Any]
    nonce: RedeemableNonce
    url: str  # the request URL (the JWS `url`), which an EAB must name too (§7.3.4)


async def authenticate_new_account(request: web.Request, frontend: Frontend) -> KeyRequest:
    """Check the JWS of a newAccount request, signed by the ``jwk`` it carries; nothing here
    touches the database."""
    parsed, nonce, correlation_id = await _verified_envelope(request, frontend)
    header = parsed.header
    if "jwk" not in header:
        raise malformed("this resource requires a 'jwk' header, not 'kid'")
    jwk, key, thumbprint = _signed_by_jwk(parsed)
    url = header["url"]
    return KeyRequest(correlation_id, parsed.payload, key, thumbprint, jwk, nonce, url)


def _signed_by_jwk(parsed: jws.ParsedJws) -> tuple[dict[str, Any], jws.PublicKey, str]:
    """The ``jwk`` header, its key and thumbprint, once the signature verified with it."""
    jwk = parsed.header["jwk"]
    key = jws.public_key_from_jwk(jwk)
    jws.verify(parsed, key)
    return jwk, key, jws.thumbprint(jwk)


async def authenticate_deferred(request: web.Request, frontend: Frontend) -> DeferredRequest:
    """Check the JWS of a ``kid`` request; with its account key already known, its nonce and
    account are left to the first statement the handler hands ``signed.gate`` to."""
    parsed, nonce, correlation_id = await _verified_envelope(request, frontend)
    header = parsed.header
    if "jwk" in header:
        raise malformed("this resource requires a 'kid' header, not 'jwk'")
    account_id = _account_id(frontend, header)
    cached = frontend.accounts.get(account_id)
    if cached is not None:
        account, key = cached
        if jws.verify_quietly(parsed, key):
            gate = Gate(nonce, account.id, account.thumbprint)
            return DeferredRequest(
                correlation_id,
                parsed.payload,
                header,
                key,
                account.thumbprint,
                None,
                account,
                gate,
            )
        # Perhaps the key changed on another replica: read the account afresh below.
        frontend.accounts.forget(account_id)
    found, key = await _redeem_for_kid(frontend, parsed, nonce, account_id)
    return DeferredRequest(
        correlation_id, parsed.payload, header, key, found.thumbprint, None, found, CHECKED
    )


async def _verified_envelope(
    request: web.Request, frontend: Frontend
) -> tuple[jws.ParsedJws, RedeemableNonce, str]:
    """The parsed JWS, its nonce (MAC and expiry checked, not yet redeemed) and the
    request's correlation id; nothing here touches the database."""
    body = await read_jws_body(request, frontend.config.server.max_body_bytes)
    parsed = jws.parse(body)
    # RFC 8555 §6.4: the signed URL must be the one this request went to.
    if parsed.header["url"] != frontend.linker.url(request.path_qs):
        raise unauthorized("JWS 'url' does not match the request URL")
    nonce = frontend.nonces.check(parsed.header["nonce"])
    return parsed, nonce, request[CORRELATION_ID]


def _account_id(frontend: Frontend, header: dict[str, Any]) -> str:
    kid = header["kid"]
    account_id = frontend.linker.account_id_from_kid(kid) if isinstance(kid, str) else None
    if account_id is None:
        raise AcmeError(
            ErrorKind.ACCOUNT_DOES_NOT_EXIST, "'kid' is not an account URL of this server"
        )
    return account_id


async def _redeem_for_kid(
    frontend: Frontend, parsed: jws.ParsedJws, nonce: RedeemableNonce, account_id: str
) -> tuple[Account, jws.PublicKey]:
    """Redeem the nonce and load the account in one statement, then verify the signature."""
    redeemed = await account_db.redeem_with_account(frontend.pool, nonce, account_id)
    found = redeemed.account
    if found is None:
        raise AcmeError(ErrorKind.ACCOUNT_DOES_NOT_EXIST, "no account at this 'kid'")
    key = frontend.accounts.remember(found)
    if not jws.verify_quietly(parsed, key):
        # Whatever failed (the algorithm does not fit the key, or the signature does not
        # verify), the request is not the account holder's: RFC 8555 §7.3.5 retires the old
        # key at a key change, and a client still using it must learn that, not be told that
        # its algorithm is unsupported.
        raise unauthorized(
            "the JWS is not signed with this account's current key (was it replaced by keyChange?)"
        )
    if not redeemed.fresh:
        raise bad_nonce()
    if found.status != AccountStatus.VALID:
        frontend.accounts.forget(found.id)
        raise unauthorized(f"account is {found.status}")
    return found, key
