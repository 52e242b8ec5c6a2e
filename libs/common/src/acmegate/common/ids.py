"""Random identifiers and tokens (CSPRNG, base64url without padding)."""

from __future__ import annotations

import base64
import itertools
import re
import secrets


def b64url(data: bytes) -> str:
    """base64url without padding (RFC 8555 §6.1 / RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_B64URL = re.compile(rb"[A-Za-z0-9_-]*")


def b64url_decode(text: str | bytes) -> bytes:
    """Strict base64url decoding: no padding, no characters outside the alphabet."""
    try:
        raw = text.encode("ascii") if isinstance(text, str) else text
    except UnicodeEncodeError as exc:
        raise ValueError("not base64url without padding") from exc
    if _B64URL.fullmatch(raw) is None or len(raw) % 4 == 1:
        raise ValueError("not base64url without padding")
    return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))


def new_id() -> str:
    """An unguessable object id for URLs (128 bits)."""
    return b64url(secrets.token_bytes(16))


def new_token() -> str:
    """A challenge token: 256 bits, base64url, no padding (draft-ietf-acme-device-attest §8: ≥128
    bits)."""
    return b64url(secrets.token_bytes(32))


# Correlation ids only tie log lines together: a per-process random prefix and a counter make
# them unique without a getrandom() system call on every request.
_CORRELATION_PREFIX = secrets.token_hex(4)
_correlation_counter = itertools.count(1)


def new_correlation_id() -> str:
    return f"{_CORRELATION_PREFIX}{next(_correlation_counter) & 0xFFFFFFFF:08x}"
