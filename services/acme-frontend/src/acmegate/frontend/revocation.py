"""revokeCert (RFC 8555 §7.6): who may revoke a certificate, and handing it to the signer.

A request is authorized when its JWS is signed either by the account that holds the
certificate (``kid``) or by the certificate's own key (``jwk``, §7.6 "the private key of the
certificate"); anything else is ``unauthorized``. The certificate must be one this gateway
delivered, byte for byte: a certificate that merely carries one of our serials proves
nothing. Only then does a request learn that the certificate is ``alreadyRevoked``.

The signer owns revocation (``pki.certificates``, the CRL, OCSP): the frontend publishes a
:class:`RevokeCertificates` and then records the revocation on its own row with a
compare-and-set, so of two concurrent requests exactly one succeeds. Publishing first means
a failed publish leaves nothing recorded and the client may simply retry; a revocation the
signer gets twice changes nothing (it keeps the first time and reason).
"""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from acmegate.common.bus import Queue
from acmegate.common.errors import AcmeError, ErrorKind, malformed, not_found, unauthorized
from acmegate.common.ids import b64url_decode
from acmegate.common.messages import RevokeCertificates
from acmegate.common.vocabulary import RevocationReason
from acmegate.common.x509names import spki_der
from acmegate.frontend.auth import SignedRequest
from acmegate.frontend.context import Frontend
from acmegate.frontend.db import revocations as revocation_db

# RFC 5280 §5.3.1 reasons a subscriber may give (as Let's Encrypt allows them), by code: the
# CA-side reasons (cACompromise 2, privilegeWithdrawn 9, aACompromise 10) are the operator's
# to use (`acmegate cert revoke`); certificateHold (6) and removeFromCRL (8) do not exist here
# (revocation is final) and 7 is unassigned.
SUBSCRIBER_REASONS: dict[int, RevocationReason] = {
    reason.code: reason
    for reason in (
        RevocationReason.UNSPECIFIED,
        RevocationReason.KEY_COMPROMISE,
        RevocationReason.AFFILIATION_CHANGED,
        RevocationReason.SUPERSEDED,
        RevocationReason.CESSATION_OF_OPERATION,
    )
}


def _reason(payload: dict[str, Any]) -> RevocationReason:
    code = payload.get("reason", 0)
    if isinstance(code, bool) or not isinstance(code, int):
        raise malformed("'reason' must be an integer (RFC 5280 §5.3.1 CRLReason)")
    reason = SUBSCRIBER_REASONS.get(code)
    if reason is None:
        allowed = ", ".join(f"{known} ({name})" for known, name in SUBSCRIBER_REASONS.items())
        raise AcmeError(
            ErrorKind.BAD_REVOCATION_REASON,
            f"revocation reason {code} is not supported; use one of {allowed}",
        )
    return reason


def _certificate(payload: dict[str, Any]) -> tuple[bytes, x509.Certificate]:
    value = payload.get("certificate")
    if not isinstance(value, str):
        raise malformed("revokeCert needs a 'certificate' (base64url DER)")
    try:
        der = b64url_decode(value)
        return der, x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise malformed("'certificate' is not a base64url DER certificate") from exc


def _leaf_der(chain_pem: str) -> bytes:
    return x509.load_pem_x509_certificate(chain_pem.encode("ascii")).public_bytes(
        serialization.Encoding.DER
    )


async def revoke(frontend: Frontend, signed: SignedRequest) -> None:
    """Authorize and carry out one revokeCert request (module doc); raises AcmeError."""
    payload = signed.json()
    der, certificate = _certificate(payload)
    reason = _reason(payload)
    serial = format(certificate.serial_number, "x")
    delivered = await revocation_db.find_by_serial(frontend.pool, serial)
    if delivered is None or _leaf_der(delivered.chain_pem) != der:
        raise not_found("this server issued no such certificate")

    if signed.jwk is None:
        account = signed.require_account()
        if account.id != delivered.account_id:
            raise unauthorized("the certificate belongs to another account")
        who = f"account {account.id}"
    else:
        if spki_der(signed.key) != spki_der(certificate.public_key()):
            raise unauthorized(
                "the JWS is signed neither by the certificate's key nor by the account "
                "that holds the certificate"
            )
        who = "the certificate's own key"

    if delivered.revoked_at is not None:
        raise AcmeError(ErrorKind.ALREADY_REVOKED, "the certificate is already revoked")
    await frontend.bus.publish(
        Queue.SIGNER_REVOKE,
        RevokeCertificates(
            correlation_id=signed.correlation_id,
            reason=reason,
            serials=[serial],
            detail=f"ACME revokeCert signed by {who}",
        ),
    )
    if not await revocation_db.mark_revoked(
        frontend.pool, delivered.id, reason=reason.code, at=frontend.clock.now()
    ):
        raise AcmeError(ErrorKind.ALREADY_REVOKED, "the certificate is already revoked")
