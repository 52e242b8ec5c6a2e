"""The one internal error type of acmegate.

Any service raises :class:`AcmeError`; it crosses the bus intact as a
:class:`acmegate.common.messages.Problem`, and the frontend alone turns it into an RFC 7807
problem document (``acmegate.frontend.problems``). So the attestation or policy service decides
what the device sees, and the URN prefix and HTTP statuses live in one table at the edge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from acmegate.common.messages import Identifier, Problem, Subproblem
from acmegate.common.vocabulary import ErrorKind

# ErrorKind is defined with the rest of the shared vocabulary; every place that raises needs
# both, so it is exported here as well.
__all__ = ["AcmeError", "ErrorKind", "malformed", "not_found", "unauthorized"]


@dataclass
class AcmeError(Exception):
    """An error the client caused or must be told about, raised anywhere in acmegate."""

    kind: ErrorKind
    detail: str
    subproblems: Sequence[Subproblem] = field(default_factory=tuple)
    identifier: Identifier | None = None
    # Seconds the client should wait before retrying (the Retry-After header of a
    # `rateLimited` or `unavailable` answer, RFC 8555 §6.6); it travels in the Problem.
    retry_after: int | None = None

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"

    def to_problem(self) -> Problem:
        """The form that travels on the bus and is stored on challenges and orders."""
        return Problem(
            kind=self.kind,
            detail=self.detail,
            subproblems=list(self.subproblems),
            identifier=self.identifier,
            retry_after=self.retry_after,
        )

    @classmethod
    def from_problem(cls, problem: Problem) -> AcmeError:
        """The error a :class:`Problem` from the bus or the database describes."""
        return cls(
            problem.kind,
            problem.detail,
            tuple(problem.subproblems),
            problem.identifier,
            problem.retry_after,
        )


def malformed(detail: str) -> AcmeError:
    """``malformed``: the request itself is wrong (RFC 8555 §6.7)."""
    return AcmeError(ErrorKind.MALFORMED, detail)


def unauthorized(detail: str) -> AcmeError:
    """``unauthorized``: the client may not do this (RFC 8555 §6.7)."""
    return AcmeError(ErrorKind.UNAUTHORIZED, detail)


def not_found(detail: str = "No such resource") -> AcmeError:
    """``notFound``: rendered as 404 with the ``malformed`` type."""
    return AcmeError(ErrorKind.NOT_FOUND, detail)
