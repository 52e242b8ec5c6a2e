"""The words every service shares, defined once: error kinds, identifier and challenge types,
certificate statuses and revocation reasons.

Bus messages declare their fields with these enums, so a message carrying a value outside
them does not decode (msgspec rejects it) and is dead-lettered as poison instead of
travelling on as a string nobody checks. Statuses of ACME objects (orders, authorizations,
challenges, accounts) are the frontend's alone and live there (``acmegate.frontend.status``).
"""

from __future__ import annotations

import enum


class ErrorKind(enum.StrEnum):
    """ACME error types (RFC 8555 §6.7 and draft-ietf-acme-device-attest §5, §9.3)."""

    ACCOUNT_DOES_NOT_EXIST = "accountDoesNotExist"
    ALREADY_REVOKED = "alreadyRevoked"
    # RFC 9773 §7.4: newOrder's `replaces` names a certificate already replaced.
    ALREADY_REPLACED = "alreadyReplaced"
    BAD_CSR = "badCSR"
    BAD_NONCE = "badNonce"
    BAD_PUBLIC_KEY = "badPublicKey"
    BAD_REVOCATION_REASON = "badRevocationReason"
    BAD_SIGNATURE_ALGORITHM = "badSignatureAlgorithm"
    CAA = "caa"
    COMPOUND = "compound"
    CONNECTION = "connection"
    DNS = "dns"
    EXTERNAL_ACCOUNT_REQUIRED = "externalAccountRequired"
    INCORRECT_RESPONSE = "incorrectResponse"
    INVALID_CONTACT = "invalidContact"
    MALFORMED = "malformed"
    ORDER_NOT_READY = "orderNotReady"
    RATE_LIMITED = "rateLimited"
    REJECTED_IDENTIFIER = "rejectedIdentifier"
    SERVER_INTERNAL = "serverInternal"
    TLS = "tls"
    UNAUTHORIZED = "unauthorized"
    UNSUPPORTED_CONTACT = "unsupportedContact"
    UNSUPPORTED_IDENTIFIER = "unsupportedIdentifier"
    USER_ACTION_REQUIRED = "userActionRequired"
    # draft-ietf-acme-device-attest §5, §9.3: the attestation statement is unacceptable.
    BAD_ATTESTATION_STATEMENT = "badAttestationStatement"
    # Not ACME types: HTTP-level outcomes the frontend renders with the `malformed` URN but
    # its own status (404, 405, 413, 415, 503).
    NOT_FOUND = "notFound"
    METHOD_NOT_ALLOWED = "methodNotAllowed"
    PAYLOAD_TOO_LARGE = "payloadTooLarge"
    UNSUPPORTED_MEDIA_TYPE = "unsupportedMediaType"
    UNAVAILABLE = "unavailable"
    CONFLICT = "conflict"


class IdentifierType(enum.StrEnum):
    """ACME identifier types this gateway certifies (RFC 8555 §9.7.7).

    ``permanent-identifier`` is the device's serial number or UDID
    (draft-ietf-acme-device-attest §3, RFC 4043). An :class:`~acmegate.common.messages.Identifier`
    keeps its type as a plain string, because a problem may echo a type a client sent that
    is not one of these.
    """

    PERMANENT_IDENTIFIER = "permanent-identifier"
    # Server names (RFC 8555 §9.7.7) and IP addresses (RFC 8738 §3), for server certificates.
    DNS = "dns"
    IP = "ip"


class ChallengeType(enum.StrEnum):
    """ACME challenge types this gateway offers (draft-ietf-acme-device-attest §5; RFC 8555
    §8.3, §8.4; RFC 8737)."""

    DEVICE_ATTEST_01 = "device-attest-01"
    HTTP_01 = "http-01"
    DNS_01 = "dns-01"
    TLS_ALPN_01 = "tls-alpn-01"


class CertificateStatus(enum.StrEnum):
    """A certificate's status as the inventory stores it (``pki.certificates.status``)."""

    VALID = "valid"
    REVOKED = "revoked"


class CertificateState(enum.StrEnum):
    """A certificate's status as people see it: ``expired`` is a valid one past notAfter."""

    VALID = "valid"
    EXPIRED = "expired"
    REVOKED = "revoked"

    @classmethod
    def of(cls, status: str, *, expired: bool) -> CertificateState:
        """The state of a certificate stored with ``status`` (revoked wins over expired)."""
        if status == CertificateStatus.REVOKED:
            return cls.REVOKED
        return cls.EXPIRED if expired else cls.VALID


class RevocationReason(enum.StrEnum):
    """RFC 5280 §5.3.1 CRLReason names, as RFC 8555 §7.6, CRLs and OCSP use them.

    certificateHold (6) and removeFromCRL (8) are left out: a revocation here is final, there
    is no hold to lift (the CA/Browser Forum Baseline Requirements §7.2.2 agree); 7 is
    unassigned.
    """

    UNSPECIFIED = "unspecified"
    KEY_COMPROMISE = "keyCompromise"
    CA_COMPROMISE = "cACompromise"
    AFFILIATION_CHANGED = "affiliationChanged"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessationOfOperation"
    PRIVILEGE_WITHDRAWN = "privilegeWithdrawn"
    AA_COMPROMISE = "aACompromise"

    @property
    def code(self) -> int:
        """The CRLReason code (RFC 5280 §5.3.1)."""
        return _REASON_CODES[self]

    @classmethod
    def from_code(cls, code: int) -> RevocationReason:
        """The reason with CRLReason ``code``; ``ValueError`` for any other code."""
        for reason, known in _REASON_CODES.items():
            if known == code:
                return reason
        raise ValueError(f"no revocation reason has code {code}")


_REASON_CODES: dict[RevocationReason, int] = {
    RevocationReason.UNSPECIFIED: 0,
    RevocationReason.KEY_COMPROMISE: 1,
    RevocationReason.CA_COMPROMISE: 2,
    RevocationReason.AFFILIATION_CHANGED: 3,
    RevocationReason.SUPERSEDED: 4,
    RevocationReason.CESSATION_OF_OPERATION: 5,
    RevocationReason.PRIVILEGE_WITHDRAWN: 9,
    RevocationReason.AA_COMPROMISE: 10,
}
