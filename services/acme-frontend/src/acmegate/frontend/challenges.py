"""Authorizations and challenges (RFC 8555 §7.5, draft-ietf-acme-device-attest §5).

A challenge response is fenced ``pending → processing`` with its outbox row and sent to the
attestation service: ``device-attest-01`` to its attestation consumer, http-01, dns-01 and
tls-alpn-01 (with the key authorization, RFC 8555 §8.1) to its validation consumer. Whatever
the attestation says — valid, or a client-caused ``badAttestationStatement`` stored on the
challenge — the POST answers 200 with the challenge (step-ca's behaviour, docs/design.md
"Errors"); only the server's own failures are errors.
"""

from __future__ import annotations

from dataclasses import replace

from acmegate.common.bus import Queue
from acmegate.common.errors import malformed, not_found, unauthorized
from acmegate.common.messages import VerifyChallenge
from acmegate.common.vocabulary import ChallengeType
from acmegate.frontend import pipeline
from acmegate.frontend.auth import DeferredRequest, SignedRequest
from acmegate.frontend.context import Frontend
from acmegate.frontend.db import orders as order_db
from acmegate.frontend.db import work as work_db
from acmegate.frontend.db.gate import CHECKED
from acmegate.frontend.db.orders import Authorization, Challenge
from acmegate.frontend.status import AuthzStatus, ChallengeStatus


def _owned(authz: Authorization | None, signed: SignedRequest) -> Authorization:
    if authz is None:
        raise not_found("no such authorization")
    if authz.account_id != signed.require_account().id:
        raise unauthorized("this authorization belongs to another account")
    return authz


async def read_or_deactivate(
    frontend: Frontend, signed: DeferredRequest, authz_id: str
) -> Authorization:
    """POST-as-GET an authorization, or deactivate it (§7.5.2)."""
    authz = _owned(await order_db.get_authorization(frontend.pool, authz_id, signed.gate), signed)
    if signed.is_post_as_get:
        return authz
    if signed.json().get("status") != "deactivated":
        raise malformed("an authorization can only be updated to 'deactivated'")
    await order_db.deactivate_authorization(frontend.pool, authz_id)
    refreshed = await order_db.get_authorization(frontend.pool, authz_id, CHECKED)
    assert refreshed is not None
    return refreshed


async def respond(
    frontend: Frontend, signed: DeferredRequest, challenge_id: str
) -> tuple[Authorization, Challenge]:
    """Read a challenge, or answer it and wait briefly for the verdict."""
    if signed.is_post_as_get:
        return _read(
            await order_db.get_authorization_of_challenge(frontend.pool, challenge_id, signed.gate),
            signed,
            challenge_id,
        )
    payload = signed.json()
    gate = signed.gate
    head_fields: dict[str, object] = {}
    queue = Queue.CHALLENGE_VERIFY
    if "attObj" not in payload and "error" not in payload:
        # Not a device attestation: http-01, dns-01 and tls-alpn-01 answers are "{}" (RFC
        # 8555 §8.3-8.4, RFC 8737 §3). Their type decides the queue and the key authorization,
        # so they are read first (the device path below stays one statement).
        authz, challenge = _read(
            await order_db.get_authorization_of_challenge(frontend.pool, challenge_id, gate),
            signed,
            challenge_id,
        )
        if challenge.type == ChallengeType.DEVICE_ATTEST_01:
            # Leave the challenge pending: the client may still answer it properly.
            raise malformed("a device-attest-01 response carries an 'attObj'")
        if challenge.status != ChallengeStatus.PENDING or authz.status != AuthzStatus.PENDING:
            # RFC 8555 §7.5.1: a challenge is answered once; repeat answers see its state.
            return authz, challenge
        gate = CHECKED
        queue = Queue.CHALLENGE_VALIDATE
        head_fields = {
            # RFC 8555 §8.1, with the key that signed this request (the account's current key).
            "key_authorization": f"{challenge.token}.{signed.thumbprint}",
            "wildcard": authz.wildcard or None,
        }
    # One statement reads the challenge and fences it with its message (db/work.py); the fence
    # is taken only when the answer is due: the account's challenge, still pending.
    head = work_db.message_head(
        VerifyChallenge,
        correlation_id=signed.correlation_id,
        payload=signed.payload,
        **head_fields,
    )
    found, woken = await pipeline.submit_and_wait(
        frontend,
        key=work_db.work_key("challenge", challenge_id),
        # Device attestations and network validations scale apart (docs/server-certificates.md).
        queue=queue,
        fence=lambda times: work_db.answer_challenge(
            frontend.pool,
            challenge_id,
            account_id=signed.require_account().id,
            head=head,
            queue=str(queue),
            times=times,
            gate=gate,
        ),
        wait=frontend.timing.challenge_wait,
    )
    authz, challenge = _read(found, signed, challenge_id)
    if woken is None:
        # RFC 8555 §7.5.1: a challenge is answered once; repeat answers see its state (and
        # so does an answer that lost the race to another).
        if challenge.status != ChallengeStatus.PENDING or authz.status != AuthzStatus.PENDING:
            return authz, challenge
        return _reread(await _current(frontend, challenge_id), challenge_id)
    if woken.outcome is not None:
        # Applied by this replica: the outcome is what the database now holds.
        outcome = woken.outcome
        done = replace(
            challenge,
            status=ChallengeStatus.VALID if outcome.valid else ChallengeStatus.INVALID,
            error=outcome.error,
            validated=outcome.at if outcome.valid else None,
        )
        authz_status = AuthzStatus.VALID if outcome.valid else AuthzStatus.INVALID
        challenges = [done if c.id == done.id else c for c in authz.challenges]
        return replace(authz, status=authz_status, challenges=challenges), done
    return _reread(await _current(frontend, challenge_id), challenge_id)


def _read(
    authz: Authorization | None, signed: SignedRequest, challenge_id: str
) -> tuple[Authorization, Challenge]:
    owned = _owned(authz, signed)
    return owned, next(c for c in owned.challenges if c.id == challenge_id)


async def _current(frontend: Frontend, challenge_id: str) -> Authorization:
    current = await order_db.get_authorization_of_challenge(frontend.pool, challenge_id, CHECKED)
    assert current is not None
    return current


def _reread(current: Authorization, challenge_id: str) -> tuple[Authorization, Challenge]:
    return current, next(c for c in current.challenges if c.id == challenge_id)
