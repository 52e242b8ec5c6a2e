"""TLS of the frontend's listeners (``server.tls``, ``admin.tls``)."""

from __future__ import annotations

import ssl

from acmegate.common.config.model import TlsConfig


def server_context(tls: TlsConfig | None) -> ssl.SSLContext | None:
    """The server context of a listener's ``tls`` settings (None: plain HTTP). Python's
    defaults apply: TLS 1.2 or later, its recommended ciphers."""
    if tls is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.certificate, tls.key)
    return context
