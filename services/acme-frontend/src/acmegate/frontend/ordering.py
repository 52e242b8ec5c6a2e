"""Orders (RFC 8555 §7.4): creating one, reading one, finalizing one.

Finalize follows Boulder's fence (its storage authority's ``SetOrderProcessing``; docs/design.md
"Fence and outbox"): ``ready → processing`` with a compare-and-set that also writes the outbox row,
then the pipeline runs in the background. From there every outcome — certificate or problem, on time
or late — is applied by the results consumer, and the sweeper fails the order once its budget is
spent: nothing stays ``processing`` forever.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from cryptography import x509

from acmegate.common.bus import Queue
from acmegate.common.errors import AcmeError, ErrorKind, malformed, not_found, unauthorized
from acmegate.common.ids import b64url_decode, new_id, new_token
from acmegate.common.messages import FinalizeOrder, Identifier
from acmegate.common.server_names import ServerName, choose_policy, parse_server_identifiers
from acmegate.common.vocabulary import ChallengeType, IdentifierType
from acmegate.frontend import eab, pipeline, renewal_info
from acmegate.frontend.auth import DeferredRequest
from acmegate.frontend.context import Frontend
from acmegate.frontend.db import orders as order_db
from acmegate.frontend.db import renewal_info as renewal_db
from acmegate.frontend.db import work as work_db
from acmegate.frontend.db.accounts import Account
from acmegate.frontend.db.gate import CHECKED
from acmegate.frontend.db.orders import NewAuthorization, NewChallenge, Order, OrderLimits
from acmegate.frontend.identifiers import parse_identifiers
from acmegate.frontend.platforms import is_enrollment_token, unknown_token
from acmegate.frontend.status import OrderStatus, presented_order_status


@dataclass(frozen=True, slots=True)
class FinalizeOutcome:
    order: Order
    # The problem that ended the order while the request waited (rendered as the response).
    problem: AcmeError | None


async def new_order(
    frontend: Frontend, signed: DeferredRequest, *, order_id: str | None = None
) -> Order:
    """Create the order ``signed`` asks for, with ``order_id`` when the request planned one
    (its trace is derived from it: enrollment_trace.py)."""
    account = signed.require_account()
    payload = signed.json()
    for field in ("notBefore", "notAfter"):
        if payload.get(field) is not None:
            # The certificate template decides validity (like Let's Encrypt and Fleet).
            raise malformed(f"{field!r} is not supported; the certificate template sets validity")
    identifiers = parse_identifiers(payload.get("identifiers"))
    identifier = identifiers[0]
    replaces = None
    gate = signed.gate
    if payload.get("replaces") is not None:
        # RFC 9773 §5: checked before the order exists, so a refused one creates nothing;
        # this lookup is then the request's first statement.
        replaces = await renewal_info.replaced_certificate(
            frontend.pool, payload["replaces"], account.id, identifiers, gate
        )
        gate = CHECKED
    if identifier.type == IdentifierType.PERMANENT_IDENTIFIER:
        enrollment_token = identifier.value if is_enrollment_token(identifier.value) else None
        authorizations = [device_authorization(identifier)]
    else:
        enrollment_token = None
        if frontend.config.acme.external_account_required and account.eab_key_id is None:
            # RFC 8555 §7.3.4: server certificates only for accounts an EAB key created;
            # device orders stay open (Apple's client cannot bind an account).
            raise eab.required()
        authorizations = server_authorizations(frontend, identifiers, account)
    now = frontend.clock.now()
    order_id = order_id or new_id()
    expires = now + frontend.timing.order_lifetime
    authz_expires = min(expires, now + frontend.timing.authorization_lifetime)
    limits = frontend.limits
    created = await order_db.create_order(
        frontend.pool,
        order_id=order_id,
        account_id=account.id,
        identifiers=identifiers,
        enrollment_token=enrollment_token,
        order_expires=expires,
        authorizations=authorizations,
        authz_expires=authz_expires,
        limits=OrderLimits(limits.new_orders, limits.failed_validations, now),
        gate=gate,
    )
    if created.refused_by is not None:
        kind = "device" if identifier.type == IdentifierType.PERMANENT_IDENTIFIER else "name"
        subject = (
            f"{kind} {identifier.value}"
            if created.refused_by is limits.failed_validations
            else f"account {account.id}"
        )
        raise created.refused_by.exceeded(subject, created.limit_tat, now)
    if not created.created:
        raise unknown_token()
    if replaces is not None:
        await renewal_db.record_replaces(frontend.pool, order_id, replaces)
    platform = created.platform
    return Order(
        id=order_id,
        account_id=account.id,
        status=OrderStatus.PENDING,
        expires=expires,
        identifiers=identifiers,
        platform=platform,
        error=None,
        certificate_id=None,
        authz_ids=[authz.id for authz in authorizations],
        created_at=now,
    )


def device_authorization(identifier: Identifier) -> NewAuthorization:
    """A device's one authorization: device-attest-01 (draft-ietf-acme-device-attest §5)."""
    challenge = NewChallenge(new_id(), ChallengeType.DEVICE_ATTEST_01, new_token())
    return NewAuthorization(new_id(), identifier, [challenge])


def server_authorizations(
    frontend: Frontend, identifiers: list[Identifier], account: Account
) -> list[NewAuthorization]:
    """One authorization per server name, if an enrollment policy admits them all for this
    account; each offers the challenges that can prove its kind of name."""
    names = parse_server_identifiers(identifiers)
    choose_policy(frontend.config.enrollment_policies, names, account.id, account.eab_key_id)
    return [
        NewAuthorization(
            new_id(),
            # RFC 8555 §7.1.4: a wildcard's authorization names the base domain.
            Identifier(name.identifier.type, name.value),
            [NewChallenge(new_id(), kind, new_token()) for kind in challenge_types(name)],
            wildcard=name.wildcard,
        )
        for name in names
    ]


def challenge_types(name: ServerName) -> list[ChallengeType]:
    """Which challenges can prove control of ``name``."""
    if name.wildcard:
        # RFC 8555 §7.1.3, §8.4: only DNS proves control of a whole zone.
        return [ChallengeType.DNS_01]
    if name.is_ip:
        # RFC 8738 §7: dns-01 cannot prove an IP address (reverse zones belong to others).
        return [ChallengeType.HTTP_01, ChallengeType.TLS_ALPN_01]
    return [ChallengeType.HTTP_01, ChallengeType.DNS_01, ChallengeType.TLS_ALPN_01]


async def own_order(frontend: Frontend, signed: DeferredRequest, order_id: str) -> Order:
    order = await order_db.get_order(frontend.pool, order_id, signed.gate)
    if order is None:
        raise not_found("no such order")
    if order.account_id != signed.require_account().id:
        raise unauthorized("this order belongs to another account")
    return order


def _csr_der(payload: dict[str, Any]) -> bytes:
    csr = payload.get("csr")
    if not isinstance(csr, str):
        raise malformed("finalize needs a 'csr' (base64url DER)")
    try:
        der = b64url_decode(csr)
        x509.load_der_x509_csr(der)
    except ValueError as exc:
        raise AcmeError(
            ErrorKind.BAD_CSR, "the CSR is not a base64url DER PKCS#10 request"
        ) from exc
    return der


def _ready(order: Order | None, account_id: str, now: datetime) -> Order:
    """The order, if the account may finalize it now (else the problem, in RFC 8555's order:
    existence, ownership, then readiness)."""
    if order is None:
        raise not_found("no such order")
    if order.account_id != account_id:
        raise unauthorized("this order belongs to another account")
    status = presented_order_status(order.status, order.expires, now)
    if status is not OrderStatus.READY:
        raise AcmeError(ErrorKind.ORDER_NOT_READY, f"order is {status}, not ready")
    return order


async def finalize(frontend: Frontend, signed: DeferredRequest, order_id: str) -> FinalizeOutcome:
    account = signed.require_account()
    try:
        csr_der = _csr_der(signed.json())
    except AcmeError:
        # A CSR that does not even parse leaves the order ready (RFC 8555 §7.4), and is
        # reported after the order's own problems.
        found = await order_db.get_order(frontend.pool, order_id, signed.gate)
        _ready(found, account.id, frontend.clock.now())
        raise
    # One statement reads the order and fences it with its message (db/work.py); the binding
    # of the CSR to the attested key and the names are checked by the attestation stage.
    head = work_db.message_head(
        FinalizeOrder,
        correlation_id=signed.correlation_id,
        csr_der=csr_der,
        eab_key_id=account.eab_key_id,
    )
    now = frontend.clock.now()
    found, started = await pipeline.submit_and_wait(
        frontend,
        key=work_db.work_key("order", order_id),
        queue=Queue.FINALIZE_ATTESTATION,
        fence=lambda times: work_db.start_finalize(
            frontend.pool,
            order_id,
            account_id=account.id,
            head=head,
            queue=str(Queue.FINALIZE_ATTESTATION),
            times=times,
            gate=signed.gate,
        ),
        wait=frontend.timing.finalize_wait,
    )
    order = _ready(found, account.id, now)
    if started is None:
        raise AcmeError(ErrorKind.ORDER_NOT_READY, "order is already being finalized")
    if started.outcome is not None:
        # Applied by this replica: the outcome is what the database now holds.
        outcome = started.outcome
        current = replace(
            order,
            status=OrderStatus.VALID if outcome.valid else OrderStatus.INVALID,
            error=outcome.error,
            certificate_id=outcome.certificate_id,
        )
    else:
        reread = await order_db.get_order(frontend.pool, order.id, CHECKED)
        assert reread is not None
        current = reread
    problem = None
    if current.status == OrderStatus.INVALID and current.error is not None:
        problem = AcmeError.from_problem(current.error)
    return FinalizeOutcome(current, problem)
