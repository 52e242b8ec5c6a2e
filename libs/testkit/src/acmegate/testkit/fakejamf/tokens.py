"""Bearer tokens of the fake Jamf Pro server, with a log tests can assert on.

Both kinds expire (docs/jamf.md §8.1): user tokens after the user's lifetime (``expires``
is an RFC 3339 string with milliseconds), API client tokens after the client's lifetime
(``expires_in`` seconds). Keep-alive revokes the old user token; invalidate revokes a token;
:meth:`TokenStore.expire_all` is the "token expiry mid-run" fault. Every issue, renewal,
refusal and revocation is appended to :attr:`TokenStore.log` (token values never are: a short
fingerprint stands for each token).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

TokenKind = Literal["client", "user"]
EventKind = Literal[
    "issued", "kept-alive", "invalidated", "rejected", "refused", "expired-by-fault"
]


def fingerprint(value: str) -> str:
    """A short stand-in for a token in logs."""
    return hashlib.sha256(value.encode()).hexdigest()[:10]


@dataclass
class IssuedToken:
    value: str
    kind: TokenKind
    subject: str
    privileges: frozenset[str]
    expires_at: float  # wall-clock seconds
    revoked: bool = False

    @property
    def id(self) -> str:
        return fingerprint(self.value)


@dataclass(frozen=True)
class TokenEvent:
    """One line of the token log."""

    at: float
    event: EventKind
    kind: TokenKind | None
    subject: str | None
    token: str | None  # fingerprint
    detail: str = ""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def rfc3339_ms(moment: float) -> str:
    """``2020-04-21T21:09:31.626Z`` (AuthTokenV1.expires)."""
    stamp = datetime.fromtimestamp(moment, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


@dataclass
class TokenStore:
    """Issued tokens by value, and the log."""

    clock: Callable[[], float] = time.time
    tokens: dict[str, IssuedToken] = field(default_factory=dict)
    log: list[TokenEvent] = field(default_factory=list)

    def record(
        self,
        event: EventKind,
        token: IssuedToken | None = None,
        *,
        detail: str = "",
        subject: str | None = None,
        kind: TokenKind | None = None,
    ) -> None:
        self.log.append(
            TokenEvent(
                self.clock(),
                event,
                token.kind if token else kind,
                token.subject if token else subject,
                token.id if token else None,
                detail,
            )
        )

    def issue(
        self, kind: TokenKind, subject: str, privileges: frozenset[str], lifetime: float
    ) -> IssuedToken:
        """A new token; JWT-shaped like Jamf's (clients must treat it as opaque, docs/jamf.md
        §8.1)."""
        now = self.clock()
        claims = {
            "sub": subject,
            "subject-type": "REGISTERED_CLIENT_ID" if kind == "client" else "JSS_USER_ID",
            "authentication-type": "CLIENT_CREDENTIALS" if kind == "client" else "JSS",
            "token-uuid": str(uuid.uuid4()),
            "iat": int(now),
            "exp": int(now + lifetime),
        }
        value = ".".join(
            (
                _b64(b'{"alg":"HS256"}'),
                _b64(json.dumps(claims).encode()),
                _b64(secrets.token_bytes(32)),
            )
        )
        token = IssuedToken(value, kind, subject, privileges, now + lifetime)
        self.tokens[value] = token
        self.record("issued", token, detail=f"lifetime {lifetime:g}s")
        return token

    def valid(self, value: str) -> IssuedToken | None:
        """The token if it is known, unexpired and not revoked (else logs a rejection)."""
        token = self.tokens.get(value)
        if token is None:
            self.record("rejected", detail="unknown token")
            return None
        if token.revoked:
            self.record("rejected", token, detail="revoked")
            return None
        if token.expires_at <= self.clock():
            self.record("rejected", token, detail="expired")
            return None
        return token

    def revoke(self, token: IssuedToken, event: EventKind = "invalidated") -> None:
        token.revoked = True
        self.record(event, token)

    def expire_all(self) -> int:
        """Make every live token expire now (the "token expiry mid-run" fault)."""
        now = self.clock()
        count = 0
        for token in self.tokens.values():
            if not token.revoked and token.expires_at > now:
                token.expires_at = now
                count += 1
                self.record("expired-by-fault", token)
        return count

    def events(self, event: EventKind, kind: TokenKind | None = None) -> list[TokenEvent]:
        """The log lines of one event (and token kind)."""
        return [e for e in self.log if e.event == event and (kind is None or e.kind == kind)]
