"""What can go wrong talking to Jamf Pro, sorted so an operator can act on it.

The guide's "Validate" button must say exactly what failed (name resolution, TLS, bad
credentials, missing privilege, timeout); a lookup only needs to know that Jamf could not
answer (:class:`~acmegate.policy.sources.base.SourceUnavailable`). One exception type with a
``kind`` serves both. Details never hold a secret: they are built from URLs, statuses and the
error codes Jamf returns, never from request bodies or headers.
"""

from __future__ import annotations

import enum


class JamfFailure(enum.StrEnum):
    """The operator-facing category of a failure (docs/jamf.md "Validate")."""

    DNS = "name resolution failed"
    TLS = "TLS failed"
    CONNECT = "cannot connect"
    TIMEOUT = "timed out"
    CREDENTIALS = "bad credentials"
    PRIVILEGE = "missing privilege"
    SERVER = "Jamf Pro server error"
    PROTOCOL = "unexpected answer"


class JamfError(Exception):
    """A request to Jamf Pro failed; ``str()`` is ``"<kind>: <detail>"``."""

    def __init__(self, kind: JamfFailure, detail: str) -> None:
        super().__init__(f"{kind.value}: {detail}")
        self.kind = kind
        self.detail = detail

    @property
    def transient(self) -> bool:
        """Worth retrying: the network or the server, not the configuration."""
        return self.kind in (
            JamfFailure.CONNECT,
            JamfFailure.TIMEOUT,
            JamfFailure.SERVER,
        )


class JamfNotFound(Exception):
    """Jamf answered 404 (an endpoint this Jamf version lacks, or an unknown id)."""

    def __init__(self, path: str) -> None:
        super().__init__(f"{path}: 404")
        self.path = path
