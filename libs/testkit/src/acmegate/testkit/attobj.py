"""Apple's `device-attest-01` envelope: the CBOR attestation object and the challenge payload.

The device POSTs ``{"attObj": base64url(CBOR)}`` (no padding), where the CBOR is the canonical map
``{"fmt": "apple", "attStmt": {"x5c": [leaf DER, intermediate DER]}}`` with no ``authData``, ``alg``
or ``sig`` (docs/apple-attestation.md §3). The freshness code Apple puts in the leaf is SHA-256 of
the challenge token exactly as sent (docs/apple-attestation.md §7).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import serialization


def attestation_object(
    x5c: Sequence[x509.Certificate | bytes],
    *,
    fmt: str = "apple",
    att_stmt: Mapping[str, Any] | None = None,
) -> bytes:
    """Canonical CBOR ``{"fmt": fmt, "attStmt": {"x5c": [DER, ...]}}`` in that key order.

    ``att_stmt`` replaces the whole statement (e.g. ``{}`` for the "empty attStmt" mode);
    certificates anywhere in it are encoded as their DER bytes.
    """
    statement: Mapping[str, Any]
    if att_stmt is not None:
        statement = att_stmt
    else:
        statement = {"x5c": [_der(cert) for cert in x5c]}
    # Canonical CBOR sorts keys shortest first, so "fmt" precedes "attStmt" as on real devices
    # (ACME-Server-ADCS parses with CTAP2 canonical rules and works with them,
    # docs/apple-attestation.md §3).
    encoded: bytes = cbor2.dumps(
        {"fmt": fmt, "attStmt": dict(statement)}, canonical=True, default=_encode_certificate
    )
    return encoded


def challenge_payload(att_obj: bytes) -> dict[str, str]:
    """The JSON body of the challenge POST: ``{"attObj": base64url without padding}``."""
    return {"attObj": base64.urlsafe_b64encode(att_obj).rstrip(b"=").decode("ascii")}


def freshness_code(token: str) -> bytes:
    """SHA-256 of the challenge token's UTF-8 bytes: the value of OID …8.11.1
    (docs/apple-attestation.md §7)."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def _encode_certificate(encoder: cbor2.CBOREncoder, value: Any) -> None:
    if not isinstance(value, x509.Certificate):
        raise cbor2.CBOREncodeError(f"cannot encode {type(value).__name__}")
    encoder.encode(_der(value))


def _der(cert: x509.Certificate | bytes) -> bytes:
    if isinstance(cert, x509.Certificate):
        return cert.public_bytes(serialization.Encoding.DER)
    return bytes(cert)
