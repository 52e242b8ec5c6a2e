"""What the admin handlers work with: the frontend's context, the token and session key."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from aiohttp import web

from acmegate.frontend.context import Frontend

# How long a dashboard login lasts.
SESSION_SECONDS = 8 * 3600


@dataclass(frozen=True)
class Admin:
    """The admin listener's state, built once when it starts."""

    frontend: Frontend
    # The admin token (bearer), as bytes for hmac.compare_digest.
    token: bytes
    # Seconds the admin API waits for the signer or the policy service.
    rpc_timeout: float = 10.0

    @property
    def session_key(self) -> bytes:
        """The dashboard's cookie key, derived from the token: a new token ends every session."""
        return hmac.new(self.token, b"acmegate admin session v1", hashlib.sha256).digest()


ADMIN = web.AppKey("admin", Admin)
