"""The one internal error type of acmegate.

Any service raises :class:`AcmeError`; it crosses the bus intact as a
:class:`acmegate.common.messages.Problem`, and the frontend alone turns it into an RFC 7807
problem document (``acmegate.frontend.problems``). So the attestation or policy service decides
what the device sees, and the URN prefix and HTTP statuses live in one table at the edge.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from acmegate.common.messages import Identifier, Problem, Subproblem


class ErrorKind(enum.StrEnum):
    """ACME error types (RFC 8555 §6.7 and draft-ietf-acme-device-attest §6)."""

    ACCOUNT_DOES_NOT_EXIST = "accountDoesNotExist"
    ALREADY_REVOKED = "alreadyRevoked"
    BAD_CSR = "badCSR"
    BAD_NONCE = "badNonce"
    BAD_PUBLIC_KEY = "badPublicKey"
    BAD_REVOCATION_REASON = "badRevocationReason"
    BAD_SIGNATURE_ALGORITHM = "badSignatureAlgorithm"
    COMPOUND = "compound"
    EXTERNAL_ACCOUNT_REQUIRED = "externalAccountRequired"
    INCORRECT_RESPONSE = "incorrectResponse"
    INVALID_CONTACT = "invalidContact"
    MALFORMED = "malformed"
    ORDER_NOT_READY = "orderNotReady"
    RATE_LIMITED = "rateLimited"
    REJECTED_IDENTIFIER = "rejectedIdentifier"
    SERVER_INTERNAL = "serverInternal"
    UNAUTHORIZED = "unauthorized"
    UNSUPPORTED_CONTACT = "unsupportedContact"
    UNSUPPORTED_IDENTIFIER = "unsupportedIdentifier"
    USER_ACTION_REQUIRED = "userActionRequired"
    # draft-ietf-acme-device-attest §6: the attestation statement is unacceptable.
    BAD_ATTESTATION_STATEMENT = "badAttestationStatement"
    # Not ACME types: HTTP-level outcomes the frontend renders with the `malformed` URN but
    # its own status (404, 405, 413, 415, 503).
    NOT_FOUND = "notFound"
    METHOD_NOT_ALLOWED = "methodNotAllowed"
    PAYLOAD_TOO_LARGE = "payloadTooLarge"
    UNSUPPORTED_MEDIA_TYPE = "unsupportedMediaType"
    UNAVAILABLE = "unavailable"
    CONFLICT = "conflict"


@dataclass
class AcmeError(Exception):
    """An error the client caused or must be told about, raised anywhere in acmegate."""

    kind: ErrorKind
    detail: str
    subproblems: Sequence[Subproblem] = field(default_factory=tuple)
    identifier: Identifier | None = None
    # Seconds the client should wait before retrying (the Retry-After header of a
    # `rateLimited` or `unavailable` answer, RFC 8555 §6.6); edge-only, not sent on the bus.
    retry_after: int | None = None

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"

    def to_problem(self) -> Problem:
        """The form that travels on the bus and is stored on challenges and orders."""
        return Problem(
            kind=str(self.kind),
            detail=self.detail,
            subproblems=list(self.subproblems),
            identifier=self.identifier,
        )

    @classmethod
    def from_problem(cls, problem: Problem) -> AcmeError:
        try:
            kind = ErrorKind(problem.kind)
        except ValueError:
            kind = ErrorKind.SERVER_INTERNAL
        return cls(kind, problem.detail, tuple(problem.subproblems), problem.identifier)


def malformed(detail: str) -> AcmeError:
    return AcmeError(ErrorKind.MALFORMED, detail)


def unauthorized(detail: str) -> AcmeError:
    return AcmeError(ErrorKind.UNAUTHORIZED, detail)


def not_found(detail: str = "No such resource") -> AcmeError:
    return AcmeError(ErrorKind.NOT_FOUND, detail)
