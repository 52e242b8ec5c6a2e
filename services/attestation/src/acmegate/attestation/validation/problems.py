"""The ACME problems a failed validation ends with (RFC 8555 §6.7).

The detail says what the validator saw, as Boulder's do, so that an operator can fix the
responder without server logs; it never carries more than a short excerpt of a response.
"""

from __future__ import annotations

from acmegate.common.errors import AcmeError, ErrorKind


def incorrect(detail: str) -> AcmeError:
    """The response was received but is not the expected one."""
    return AcmeError(ErrorKind.INCORRECT_RESPONSE, detail)


def connection(detail: str) -> AcmeError:
    """The server could not connect to the validation target."""
    return AcmeError(ErrorKind.CONNECTION, detail)


def dns(detail: str) -> AcmeError:
    """A DNS lookup failed (NXDOMAIN, SERVFAIL, timeout, no address)."""
    return AcmeError(ErrorKind.DNS, detail)


def tls(detail: str) -> AcmeError:
    """The TLS handshake of tls-alpn-01 failed."""
    return AcmeError(ErrorKind.TLS, detail)


def caa(detail: str) -> AcmeError:
    """CAA records forbid this CA to issue for the name (RFC 8659)."""
    return AcmeError(ErrorKind.CAA, detail)
