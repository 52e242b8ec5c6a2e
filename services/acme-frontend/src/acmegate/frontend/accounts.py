"""Account operations (RFC 8555 §7.3): registration, update, deactivation, key change."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from acmegate.common.errors import AcmeError, ErrorKind, malformed, unauthorized
from acmegate.common.ids import new_id
from acmegate.common.json_input import JsonInputError, decode_json
from acmegate.frontend import eab, jws
from acmegate.frontend.auth import KeyRequest, SignedRequest
from acmegate.frontend.context import Frontend
from acmegate.frontend.db import accounts as account_db
from acmegate.frontend.db import eab as eab_db
from acmegate.frontend.db.accounts import Account
from acmegate.frontend.nonces import bad_nonce
from acmegate.frontend.status import AccountStatus


def _contact(payload: dict[str, Any]) -> list[str] | None:
    """RFC 8555 §7.3: contact URLs; only mailto: is supported, one address each."""
    if "contact" not in payload:
        return None
    contact = payload["contact"]
    if not isinstance(contact, list) or not all(isinstance(c, str) for c in contact):
        raise malformed("'contact' must be an array of URLs")
    for url in contact:
        if not url.startswith("mailto:"):
            raise AcmeError(
                ErrorKind.UNSUPPORTED_CONTACT, f"only mailto: contacts are supported: {url!r}"
            )
        address = url[len("mailto:") :]
        if "@" not in address or "," in address or "?" in address or len(address) > 254:
            raise AcmeError(ErrorKind.INVALID_CONTACT, f"invalid contact address {url!r}")
    return list(contact)


def _bool(payload: dict[str, Any], name: str) -> bool | None:
    value = payload.get(name)
    if value is not None and not isinstance(value, bool):
        raise malformed(f"{name!r} must be a boolean")
    return value


async def register(
    frontend: Frontend, request: KeyRequest, client: str, *, eab_required: bool = False
) -> tuple[Account, bool]:
    """newAccount: (account, created). An existing key returns its account (§7.3.1); a new
    one is created within the new-accounts limit of ``client`` (its rate-limit subject).

    One statement redeems the nonce, looks the key up and creates its account when it has
    none (db/accounts.py); what the payload asks is checked before it, and a refusal that
    matters only for a new account is raised only if the key has none."""
    candidate: Account | None = None
    unreadable: AcmeError | None = None  # refused whether or not the key has an account
    refusal: AcmeError | None = None  # refused only if it has none
    try:
        payload = _payload(request.payload)
    except AcmeError as error:
        unreadable = error
    else:
        try:
            candidate = _new_account(frontend, request, payload, eab_required=eab_required)
        except AcmeError as error:
            refusal = error
    now = frontend.clock.now()
    if candidate is not None and candidate.eab_key_id is not None:
        account, created = await _register_bound(frontend, request, candidate, client)
        return account, created
    outcome = await account_db.register(
        frontend.pool,
        request.nonce,
        request.thumbprint,
        candidate,
        limit=frontend.limits.new_accounts,
        client=client,
        now=now,
    )
    return _registered(frontend, request, outcome, unreadable, refusal, client, now)


async def _register_bound(
    frontend: Frontend, request: KeyRequest, candidate: Account, client: str
) -> tuple[Account, bool]:
    """newAccount with a verified EAB (RFC 8555 §7.3.4): the account is created and the key
    bound to it in one transaction, so a key that is unknown, revoked or already used creates
    nothing (and two requests racing for one key create one account)."""
    key_id = candidate.eab_key_id
    assert key_id is not None
    now = frontend.clock.now()
    async with frontend.pool.acquire() as connection, connection.transaction():
        outcome = await account_db.register(
            connection,
            request.nonce,
            request.thumbprint,
            candidate,
            limit=frontend.limits.new_accounts,
            client=client,
            now=now,
        )
        if outcome.fresh and outcome.created:
            binding = await eab_db.bind(connection, key_id, candidate.id, now)
            if not binding.bound:
                raise eab.refused(key_id, binding.known, binding.revoked)
            assert outcome.account is not None
            outcome = replace(outcome, account=replace(outcome.account, eab_key_id=key_id))
    return _registered(frontend, request, outcome, None, None, client, now)


def _registered(
    frontend: Frontend,
    request: KeyRequest,
    outcome: account_db.Registered,
    unreadable: AcmeError | None,
    refusal: AcmeError | None,
    client: str,
    now: datetime,
) -> tuple[Account, bool]:
    """What newAccount answers once its statement ran."""
    limit = frontend.limits.new_accounts
    if not outcome.fresh:
        raise bad_nonce()
    if unreadable is not None:
        raise unreadable
    account = outcome.account
    if account is None:
        if refusal is not None:
            raise refusal
        assert limit is not None and outcome.limit_tat is not None
        raise limit.exceeded(f"client {client}", outcome.limit_tat, now)
    if account.status != AccountStatus.VALID:
        # RFC 8555 §7.3.6: a deactivated account's key is refused with unauthorized; it
        # may not even learn its account URL again.
        raise unauthorized(f"the account of this key is {account.status}")
    # The client's next request (newOrder) names this account by `kid`: known here, its
    # nonce and validity ride in that request's first statement (db/gate.py).
    frontend.accounts.remember(account, request.key)
    return account, outcome.created


def _payload(payload: bytes) -> dict[str, Any]:
    """newAccount's payload as a JSON object (RFC 8555 §7.3)."""
    try:
        value = decode_json(payload) if payload else {}
    except JsonInputError as exc:
        raise malformed(f"JWS payload is not acceptable JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise malformed("JWS payload must be a JSON object")
    return value


def _new_account(
    frontend: Frontend, request: KeyRequest, payload: dict[str, Any], *, eab_required: bool
) -> Account:
    """The account to create if the key has none (refused: only an existing one is wanted,
    or the EAB is missing or wrong)."""
    if _bool(payload, "onlyReturnExisting"):
        raise AcmeError(ErrorKind.ACCOUNT_DOES_NOT_EXIST, "no account exists for this key")
    binding = payload.get("externalAccountBinding")
    key_id = None
    if binding is not None:
        # §7.3.4: verified wherever it is sent, so a binding is never silently ignored.
        key_id = eab.verify_binding(frontend.eab, binding, url=request.url, jwk=request.jwk)
    elif eab_required:
        raise eab.required()
    return Account(
        id=new_id(),
        thumbprint=request.thumbprint,
        jwk=request.jwk,
        status=AccountStatus.VALID,
        contact=_contact(payload) or [],
        terms_agreed=bool(_bool(payload, "termsOfServiceAgreed")),
        eab_key_id=key_id,
    )


async def update(frontend: Frontend, signed: SignedRequest, account_id: str) -> Account:
    """POST to the account URL: read, update contact, or deactivate (§7.3.2, §7.3.6)."""
    account = signed.require_account()
    if account.id != account_id:
        raise unauthorized("the JWS 'kid' is not this account")
    if signed.is_post_as_get:
        return account
    payload = signed.json()
    status = payload.get("status")
    if status not in (None, "valid", "deactivated"):
        raise malformed("an account's status can only be set to 'deactivated'")
    frontend.accounts.forget(account.id)
    updated = await account_db.update(
        frontend.pool,
        account.id,
        contact=_contact(payload),
        deactivate=status == "deactivated",
        terms_agreed=_bool(payload, "termsOfServiceAgreed"),
    )
    if updated is None:
        raise unauthorized("account is no longer valid")
    return updated


async def change_key(frontend: Frontend, signed: SignedRequest) -> Account:
    """keyChange (§7.3.5): an inner JWS signed by the new key names the account and old key."""
    account = signed.require_account()
    inner = jws.parse(signed.payload, inner=True)
    header = inner.header
    if "jwk" not in header:
        raise malformed("the inner JWS of a key change must carry 'jwk'")
    if header.get("url") != signed.header["url"]:
        raise malformed("the inner JWS 'url' must equal the outer one")
    new_jwk = header["jwk"]
    new_key = jws.public_key_from_jwk(new_jwk)
    jws.verify(inner, new_key)
    try:
        body = decode_json(inner.payload)
    except JsonInputError as exc:
        raise malformed(f"the inner JWS payload is not acceptable JSON: {exc}") from exc
    if not isinstance(body, dict) or body.get("account") != frontend.linker.account(account.id):
        raise malformed("the inner JWS must name this account")
    if (
        not isinstance(body.get("oldKey"), dict)
        or jws.thumbprint(body["oldKey"]) != account.thumbprint
    ):
        raise malformed("'oldKey' is not the account's current key")
    new_thumbprint = jws.thumbprint(new_jwk)
    frontend.accounts.forget(account.id)
    changed = await account_db.change_key(
        frontend.pool, account.id, account.thumbprint, new_jwk, new_thumbprint
    )
    if changed is False:
        # RFC 8555 §7.3.5: 409 Conflict when the new key already belongs to an account.
        raise AcmeError(ErrorKind.CONFLICT, "the new key is already used by another account")
    if changed is None:
        raise unauthorized("account changed concurrently; retry")
    return replace(account, thumbprint=new_thumbprint, jwk=new_jwk)
