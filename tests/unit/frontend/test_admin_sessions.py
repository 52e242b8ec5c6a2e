"""Dashboard sessions: an HMAC of the expiry under a key derived from the admin token."""

from __future__ import annotations

from typing import Any

from acmegate.frontend.admin.auth import new_session, session_valid, token_matches
from acmegate.frontend.admin.context import SESSION_SECONDS, Admin

NOW = 1_750_000_000.0


def admin(token: str) -> Admin:
    frontend: Any = None  # sessions need the token only
    return Admin(frontend, token.encode())


def test_a_session_is_valid_until_it_expires() -> None:
    value, lifetime = new_session(admin("t0ken"), now=NOW)
    assert lifetime == SESSION_SECONDS and "t0ken" not in value
    assert session_valid(admin("t0ken"), value, now=NOW + 60)
    assert not session_valid(admin("t0ken"), value, now=NOW + SESSION_SECONDS + 1)


def test_a_tampered_or_foreign_session_is_refused() -> None:
    value, _ = new_session(admin("t0ken"), now=NOW)
    expires, _, signature = value.partition(".")
    # A later expiry with the old signature, another token's cookie, garbage.
    assert not session_valid(admin("t0ken"), f"{int(expires) + 3600}.{signature}", now=NOW)
    assert not session_valid(admin("another"), value, now=NOW)
    for junk in ("", ".", "abc.def", "-1.x", "9" * 40 + ".x", "1.\u00e9"):
        assert not session_valid(admin("t0ken"), junk, now=NOW)


def test_the_token_is_compared_whole() -> None:
    assert token_matches(admin("s3cret"), "s3cret")
    for wrong in ("", "s3cre", "s3cret ", "S3CRET", "s3cret\u00e9"):
        assert not token_matches(admin("s3cret"), wrong)
