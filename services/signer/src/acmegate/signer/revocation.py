"""Revocation reasons (RFC 5280 §5.3.1 CRLReason, as RFC 8555 §7.6 uses them).

Every revocation, whoever asks for it (ACME revokeCert, ``acmegate cert revoke``, the policy
service's revoke-on-failure), is recorded in ``pki.certificates`` by
:func:`acmegate.signer.db.revocations.revoke_certificates`; the CRL (:mod:`acmegate.signer.crl`) and
the OCSP responder (:mod:`acmegate.signer.ocsp`) publish what is recorded there.
"""

from __future__ import annotations

from cryptography import x509

# RFC 5280 §5.3.1 names and codes. certificateHold (6) and removeFromCRL (8) are left out:
# a revocation here is final, there is no hold to lift (CA/Browser Forum BR §7.2.2 agrees).
REASON_CODES: dict[str, int] = {
    "unspecified": 0,
    "keyCompromise": 1,
    "cACompromise": 2,
    "affiliationChanged": 3,
    "superseded": 4,
    "cessationOfOperation": 5,
    "privilegeWithdrawn": 9,
    "aACompromise": 10,
}
_BY_FOLDED = {name.lower(): name for name in REASON_CODES}
_BY_CODE = {str(code): name for name, code in REASON_CODES.items()}


def parse_reason(text: str) -> str:
    """The RFC 5280 name of a reason given by name (any case, ``_`` allowed) or by code.

    ``ValueError`` for anything else, including certificateHold and removeFromCRL.
    """
    key = text.strip()
    if key in _BY_CODE:
        return _BY_CODE[key]
    name = _BY_FOLDED.get(key.replace("_", "").lower())
    if name is None:
        raise ValueError(
            f"unsupported revocation reason {text!r}; one of {', '.join(REASON_CODES)}"
        )
    return name


def reason_flag(name: str) -> x509.ReasonFlags | None:
    """The CRL entry / OCSP reason of a stored reason name; ``None`` for ``unspecified``,
    whose reasonCode RFC 5280 §5.3.1 says SHOULD be absent."""
    if name == "unspecified":
        return None
    return x509.ReasonFlags(name)
