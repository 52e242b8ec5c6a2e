"""Flattened JWS signing for test ACME clients (RFC 7515 §7.2.2, RFC 8555 §6.2).

Supports the algorithms the gateway accepts (ES256/ES384/ES512, RS256, EdDSA with Ed25519),
JWK export (RFC 7517/7518 §6, RFC 8037 for OKP) and the RFC 7638 thumbprint used in key
authorizations (RFC 8555 §8.1).

It can also reproduce the Apple client's JWS bug (docs/apple-attestation.md §10): Apple's
``SecJWS`` converts the DER ECDSA signature to R‖S "skipping leading zeroes", so whenever R or
S is below 2^(8·(n-1)) the signature is one (or more) bytes short of RFC 7518 §3.4's fixed
width (63 bytes instead of 64 for ES256, about one signature in 128). :class:`LeadingZeros`
selects that behaviour and can force it, so a test need not wait for the 1-in-128 case.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
"""Private keys a test client can sign JWS with."""

VerifyingKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey

# Re-signing until R or S has a leading zero byte takes ~256 attempts on average for one
# given component; this bound makes a failure astronomically unlikely (p < 1e-30).
_MAX_FORCE_ATTEMPTS = 20_000


class Algorithm(enum.StrEnum):
    """JWS ``alg`` values (RFC 7518 §3.1, RFC 8037 §3.1)."""

    ES256 = "ES256"
    ES384 = "ES384"
    ES512 = "ES512"
    RS256 = "RS256"
    EDDSA = "EdDSA"


class LeadingZeros(enum.Enum):
    """How an ECDSA R‖S signature treats leading zero bytes of R and S."""

    KEEP = "keep"
    """RFC 7518 §3.4: R and S each left-padded to the curve's byte length."""
    STRIP = "strip"
    """Apple's bug: leading zero bytes of R and of S dropped when they occur (≈1/128 ES256)."""
    FORCE_R = "force-r"
    """Re-sign until R has a leading zero byte, then strip as Apple does (R is short)."""
    FORCE_S = "force-s"
    """Re-sign until S has a leading zero byte, then strip as Apple does (S is short)."""
    FORCE_ANY = "force-any"
    """Re-sign until R or S has a leading zero byte, then strip as Apple does."""


_EC_CURVES: dict[str, tuple[Algorithm, str, int, hashes.HashAlgorithm]] = {
    # curve name → (alg, JWK crv, coordinate byte length, hash)   (RFC 7518 §3.4, §6.2.1.1)
    "secp256r1": (Algorithm.ES256, "P-256", 32, hashes.SHA256()),
    "secp384r1": (Algorithm.ES384, "P-384", 48, hashes.SHA384()),
    "secp521r1": (Algorithm.ES512, "P-521", 66, hashes.SHA512()),
}


def b64url(data: bytes) -> str:
    """base64url without padding (RFC 7515 §2, RFC 8555 §6.1)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Inverse of :func:`b64url` (accepts missing padding)."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int_bytes(value: int, length: int | None = None) -> bytes:
    if length is None:
        length = max(1, (value.bit_length() + 7) // 8)
    return value.to_bytes(length, "big")


def _ec_params(curve: ec.EllipticCurve) -> tuple[Algorithm, str, int, hashes.HashAlgorithm]:
    try:
        return _EC_CURVES[curve.name]
    except KeyError:
        raise ValueError(f"unsupported EC curve for JWS: {curve.name}") from None


def algorithm_for(key: SigningKey | VerifyingKey) -> Algorithm:
    """The JWS algorithm a key signs with: the curve decides for EC keys (RFC 7518 §3.4)."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return _ec_params(key.curve)[0]
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return Algorithm.RS256
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return Algorithm.EDDSA
    raise TypeError(f"unsupported key type for JWS: {type(key).__name__}")


def public_jwk(key: SigningKey | VerifyingKey) -> dict[str, str]:
    """The public JWK of ``key`` with only its required members (RFC 7517, RFC 7518 §6)."""
    public: VerifyingKey
    if isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        public = key.public_key()
    else:
        public = key
    if isinstance(public, ec.EllipticCurvePublicKey):
        _alg, crv, size, _hash = _ec_params(public.curve)
        numbers = public.public_numbers()
        return {
            "crv": crv,
            "kty": "EC",
            "x": b64url(_int_bytes(numbers.x, size)),
            "y": b64url(_int_bytes(numbers.y, size)),
        }
    if isinstance(public, rsa.RSAPublicKey):
        rsa_numbers = public.public_numbers()
        return {
            "e": b64url(_int_bytes(rsa_numbers.e)),
            "kty": "RSA",
            "n": b64url(_int_bytes(rsa_numbers.n)),
        }
    if isinstance(public, ed25519.Ed25519PublicKey):
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"crv": "Ed25519", "kty": "OKP", "x": b64url(raw)}
    raise TypeError(f"unsupported key type for JWK: {type(public).__name__}")


def jwk_thumbprint(jwk: Mapping[str, str]) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url): the required members, sorted, no spaces."""
    required = {
        "EC": ("crv", "kty", "x", "y"),
        "RSA": ("e", "kty", "n"),
        "OKP": ("crv", "kty", "x"),
    }[jwk["kty"]]
    canonical = json.dumps({name: jwk[name] for name in required}, separators=(",", ":"))
    return b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def key_authorization(token: str, jwk: Mapping[str, str]) -> str:
    """RFC 8555 §8.1: ``token || '.' || base64url(Thumbprint(accountKey))``."""
    return f"{token}.{jwk_thumbprint(jwk)}"


def _has_leading_zero(value: int, size: int) -> bool:
    return value < 1 << (8 * (size - 1))


def _ecdsa_sign(key: ec.EllipticCurvePrivateKey, data: bytes, leading_zeros: LeadingZeros) -> bytes:
    _alg, _crv, size, digest = _ec_params(key.curve)
    wanted = {
        LeadingZeros.FORCE_R: lambda r, s: _has_leading_zero(r, size),
        LeadingZeros.FORCE_S: lambda r, s: _has_leading_zero(s, size),
        LeadingZeros.FORCE_ANY: lambda r, s: (
            _has_leading_zero(r, size) or _has_leading_zero(s, size)
        ),
    }.get(leading_zeros)
    for _attempt in range(_MAX_FORCE_ATTEMPTS):
        # ECDSA in OpenSSL uses a fresh random k, so each attempt gives new (R, S).
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(digest)))
        if wanted is None or wanted(r, s):
            break
    else:  # pragma: no cover - probability below 1e-30
        raise RuntimeError("could not produce an ECDSA signature with a leading zero byte")
    if leading_zeros is LeadingZeros.KEEP:
        return _int_bytes(r, size) + _int_bytes(s, size)
    # Apple's SecJWS: each integer written in its minimal big-endian form.
    return _int_bytes(r) + _int_bytes(s)


def sign_bytes(
    key: SigningKey, data: bytes, *, leading_zeros: LeadingZeros = LeadingZeros.KEEP
) -> bytes:
    """The JWS signature of ``data`` (the JWS signing input) with ``key``'s algorithm."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return _ecdsa_sign(key, data, leading_zeros)
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    raise TypeError(f"unsupported key type for JWS: {type(key).__name__}")


def encode_payload(payload: Mapping[str, Any] | bytes | None) -> str:
    """The JWS ``payload`` member: ``""`` for POST-as-GET (RFC 8555 §6.3), JSON otherwise."""
    if payload is None:
        return ""
    if isinstance(payload, bytes):
        return b64url(payload)
    return b64url(json.dumps(payload, separators=(",", ":")).encode("utf-8"))


def sign_flattened(
    key: SigningKey,
    protected: Mapping[str, Any],
    payload: Mapping[str, Any] | bytes | None,
    *,
    leading_zeros: LeadingZeros = LeadingZeros.KEEP,
) -> dict[str, str]:
    """A flattened JWS JSON object (RFC 7515 §7.2.2) with exactly the given protected header.

    ``payload`` is a JSON object, raw bytes (sent as they are, for broken-payload tests) or
    ``None`` for the empty payload of POST-as-GET.
    """
    protected_b64 = b64url(json.dumps(dict(protected), separators=(",", ":")).encode("utf-8"))
    payload_b64 = encode_payload(payload)
    signing_input = f"{protected_b64}.{payload_b64}".encode("ascii")
    signature = sign_bytes(key, signing_input, leading_zeros=leading_zeros)
    return {"protected": protected_b64, "payload": payload_b64, "signature": b64url(signature)}


@dataclass
class JwsSigner:
    """An ACME account key: signs requests with ``jwk`` (newAccount) or ``kid`` (the rest)."""

    key: SigningKey
    leading_zeros: LeadingZeros = LeadingZeros.KEEP
    alg: Algorithm = field(init=False)
    jwk: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.alg = algorithm_for(self.key)
        self.jwk = public_jwk(self.key)

    @classmethod
    def generate(
        cls, alg: Algorithm = Algorithm.ES256, *, leading_zeros: LeadingZeros = LeadingZeros.KEEP
    ) -> JwsSigner:
        """A fresh account key for ``alg`` (P-256 for ES256, as Apple devices use)."""
        key: SigningKey
        if alg is Algorithm.ES256:
            key = ec.generate_private_key(ec.SECP256R1())
        elif alg is Algorithm.ES384:
            key = ec.generate_private_key(ec.SECP384R1())
        elif alg is Algorithm.ES512:
            key = ec.generate_private_key(ec.SECP521R1())
        elif alg is Algorithm.RS256:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            key = ed25519.Ed25519PrivateKey.generate()
        return cls(key, leading_zeros)

    @property
    def thumbprint(self) -> str:
        """RFC 7638 thumbprint of the public key."""
        return jwk_thumbprint(self.jwk)

    def protected_header(self, *, url: str, nonce: str | None, kid: str | None) -> dict[str, Any]:
        """RFC 8555 §6.2: ``alg``, ``nonce``, ``url`` and either ``kid`` or ``jwk``."""
        header: dict[str, Any] = {"alg": str(self.alg)}
        if kid is None:
            header["jwk"] = self.jwk
        else:
            header["kid"] = kid
        if nonce is not None:
            header["nonce"] = nonce
        header["url"] = url
        return header

    def sign(
        self,
        protected: Mapping[str, Any],
        payload: Mapping[str, Any] | bytes | None,
    ) -> dict[str, str]:
        """Flattened JWS of ``payload`` under exactly the given protected header."""
        return sign_flattened(self.key, protected, payload, leading_zeros=self.leading_zeros)
