"""What the admin handlers work with: the frontend's context, the token and session key."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from aiohttp import web

from acmegate.frontend.client_address import TrustedProxies
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
    # Whose X-Forwarded-* the admin listener believes (admin.trusted_proxies).
    proxies: TrustedProxies = field(default_factory=TrustedProxies)
    # Administrators reach the listener over https (admin.tls, or an https admin.external_url).
    https: bool = False
    # Strict-Transport-Security max-age on https responses (0: none).
    hsts_max_age: int = 0

    def served_over_https(self, request: web.Request) -> bool:
        """Whether this request reached the gateway over https (here or at a trusted proxy)."""
        return self.https or self.proxies.https(request)

    @property
    def session_key(self) -> bytes:
        """The dashboard's cookie key, derived from the token: a new token ends every session."""
        return hmac.new(self.token, b"acmegate admin session v1", hashlib.sha256).digest()


ADMIN = web.AppKey("admin", Admin)
