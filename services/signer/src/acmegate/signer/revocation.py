"""Revocation reasons as operators type them, and as CRLs and OCSP carry them.

The reasons themselves (RFC 5280 §5.3.1 CRLReason, as RFC 8555 §7.6 uses them) are
:class:`~acmegate.common.vocabulary.RevocationReason`. Every revocation, whoever asks for it
(ACME revokeCert, ``acmegate cert revoke``, the policy service's revoke-on-failure), is
recorded in ``pki.certificates`` by :func:`acmegate.signer.db.revocations.revoke_certificates`;
the CRL (:mod:`acmegate.signer.crl`) and the OCSP responder (:mod:`acmegate.signer.ocsp`)
publish what is recorded there.
"""

from __future__ import annotations

from cryptography import x509

from acmegate.common.vocabulary import RevocationReason

_BY_FOLDED = {reason.lower(): reason for reason in RevocationReason}
_BY_CODE = {str(reason.code): reason for reason in RevocationReason}


def parse_reason(text: str) -> RevocationReason:
    """The reason given by name (any case, ``_`` allowed) or by CRLReason code.

    ``ValueError`` for anything else, including certificateHold and removeFromCRL.
    """
    key = text.strip()
    if key in _BY_CODE:
        return _BY_CODE[key]
    reason = _BY_FOLDED.get(key.replace("_", "").lower())
    if reason is None:
        raise ValueError(
            f"unsupported revocation reason {text!r}; one of {', '.join(RevocationReason)}"
        )
    return reason


def reason_flag(reason: RevocationReason) -> x509.ReasonFlags | None:
    """The CRL entry / OCSP reason of a stored reason; ``None`` for ``unspecified``, whose
    reasonCode RFC 5280 §5.3.1 says SHOULD be absent."""
    if reason == RevocationReason.UNSPECIFIED:
        return None
    return x509.ReasonFlags(reason)
