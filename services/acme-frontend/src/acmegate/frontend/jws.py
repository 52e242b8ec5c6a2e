"""Strict JWS for ACME requests (RFC 8555 §6.2, RFC 7515, RFC 7517, RFC 7638).

Only the flattened JSON serialization with a protected header, no unprotected ``header``;
algorithms ES256/ES384/ES512, RS256 and EdDSA (Ed25519); never ``none`` or a MAC. The key in
a ``jwk`` must be public, of a type and size that matches ``alg``. The protected header
names each member once and has no ``crit`` or ``b64`` (RFC 7797): what the server verifies is
what any other reader of the request would take it to say.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from acmegate.common.errors import AcmeError, ErrorKind, malformed
from acmegate.common.ids import b64url, b64url_decode
from acmegate.common.json_input import JsonInputError, decode_json

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey

SUPPORTED_ALGORITHMS = ("ES256", "ES384", "ES512", "RS256", "EdDSA")

# alg → (curve name, coordinate size in bytes, hash)
_EC_ALGS: dict[str, tuple[str, int, hashes.HashAlgorithm]] = {
    "ES256": ("P-256", 32, hashes.SHA256()),
    "ES384": ("P-384", 48, hashes.SHA384()),
    "ES512": ("P-521", 66, hashes.SHA512()),
}
_CURVES: dict[str, tuple[ec.EllipticCurve, int]] = {
    "P-256": (ec.SECP256R1(), 32),
    "P-384": (ec.SECP384R1(), 48),
    "P-521": (ec.SECP521R1(), 66),
}
MIN_RSA_BITS = 2048


class _Flattened(msgspec.Struct, forbid_unknown_fields=True):
    protected: str
    payload: str
    signature: str


@dataclass(frozen=True, slots=True)
class ParsedJws:
    """A flattened JWS whose structure (not yet its signature) has been checked."""

    header: dict[str, Any]
    signing_input: bytes
    payload: bytes
    signature: bytes

    @property
    def alg(self) -> str:
        value = self.header["alg"]
        assert isinstance(value, str)
        return value


def bad_signature_algorithm(alg: object) -> AcmeError:
    return AcmeError(
        ErrorKind.BAD_SIGNATURE_ALGORITHM,
        f"JWS algorithm {alg!r} is not supported; use one of {', '.join(SUPPORTED_ALGORITHMS)}",
    )


def parse(body: bytes, *, inner: bool = False) -> ParsedJws:
    """Parse a flattened JWS; errors are ``malformed`` or ``badSignatureAlgorithm``.

    ``inner``: the nested JWS of a key change (RFC 8555 §7.3.5), which has no nonce.
    """
    try:
        jws = decode_json(body, type=_Flattened)
    except JsonInputError as exc:
        # e.g. an unprotected "header" or a general-serialization "signatures" member.
        raise malformed(f"request body is not a flattened JWS: {exc}") from exc
    try:
        header_bytes = b64url_decode(jws.protected)
        payload = b64url_decode(jws.payload)
        signature = b64url_decode(jws.signature)
    except ValueError as exc:
        raise malformed("JWS members must be base64url without padding") from exc
    try:
        header = decode_json(header_bytes)
    except JsonInputError as exc:
        raise malformed(f"JWS protected header is not acceptable JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise malformed("JWS protected header is not a JSON object")
    if _has_duplicate_members(header_bytes):
        # RFC 7515 §4 lets a parser take the last of duplicated names or refuse them; refusing
        # leaves no room for a proxy or log reader that takes the first 'url' or 'kid'.
        raise malformed("JWS protected header repeats a member name")
    alg = header.get("alg")
    if alg not in SUPPORTED_ALGORITHMS:
        raise bad_signature_algorithm(alg)
    for name in ("url",) if inner else ("nonce", "url"):
        if not isinstance(header.get(name), str) or not header[name]:
            raise malformed(f"JWS protected header lacks {name!r}")
    if inner and "nonce" in header:
        raise malformed("the inner JWS of a key change must not carry a nonce")
    has_jwk, has_kid = "jwk" in header, "kid" in header
    if has_jwk == has_kid:
        raise malformed("JWS protected header must carry exactly one of 'jwk' and 'kid'")
    if "crit" in header:
        raise malformed("JWS 'crit' header parameters are not supported")
    if "b64" in header:
        # RFC 7797 (unencoded payload) is not part of ACME (RFC 8555 §6.2); without 'crit' a
        # verifier would silently ignore it, so a sender and this server could disagree on
        # what was signed.
        raise malformed("JWS 'b64' header parameter (RFC 7797) is not supported")
    signing_input = jws.protected.encode("ascii") + b"." + jws.payload.encode("ascii")
    return ParsedJws(header, signing_input, payload, signature)


def _has_duplicate_members(document: bytes) -> bool:
    """Whether any object in the JSON ``document`` (already decoded once, so valid and
    small) repeats a member name."""
    duplicated = False

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal duplicated
        result = dict(items)
        duplicated = duplicated or len(result) != len(items)
        return result

    json.loads(document, object_pairs_hook=pairs)
    return duplicated


def public_key_from_jwk(jwk: object) -> PublicKey:
    """The public key of a JWK (RFC 7517/7518); ``badPublicKey`` when unusable."""
    if not isinstance(jwk, dict):
        raise AcmeError(ErrorKind.BAD_PUBLIC_KEY, "jwk must be a JSON object")
    if "d" in jwk or "p" in jwk or "k" in jwk:
        raise AcmeError(ErrorKind.BAD_PUBLIC_KEY, "jwk must be a public key")
    kty = jwk.get("kty")
    try:
        if kty == "EC":
            curve_name = jwk.get("crv")
            if curve_name not in _CURVES:
                raise AcmeError(ErrorKind.BAD_PUBLIC_KEY, f"unsupported EC curve {curve_name!r}")
            curve, size = _CURVES[curve_name]
            x, y = b64url_decode(jwk["x"]), b64url_decode(jwk["y"])
            if len(x) != size or len(y) != size:
                raise AcmeError(ErrorKind.BAD_PUBLIC_KEY, "EC coordinates have the wrong length")
            return ec.EllipticCurvePublicNumbers(
                int.from_bytes(x, "big"), int.from_bytes(y, "big"), curve
            ).public_key()
        if kty == "RSA":
            n, e = b64url_decode(jwk["n"]), b64url_decode(jwk["e"])
            key = rsa.RSAPublicNumbers(int.from_bytes(e, "big"), int.from_bytes(n, "big"))
            public = key.public_key()
            if public.key_size < MIN_RSA_BITS:
                raise AcmeError(
                    ErrorKind.BAD_PUBLIC_KEY, f"RSA keys must have at least {MIN_RSA_BITS} bits"
                )
            return public
        if kty == "OKP":
            if jwk.get("crv") != "Ed25519":
                raise AcmeError(ErrorKind.BAD_PUBLIC_KEY, "only the Ed25519 OKP curve is supported")
            x = b64url_decode(jwk["x"])
            return ed25519.Ed25519PublicKey.from_public_bytes(x)
    except AcmeError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise AcmeError(ErrorKind.BAD_PUBLIC_KEY, f"invalid {kty} jwk: {exc}") from exc
    raise AcmeError(ErrorKind.BAD_PUBLIC_KEY, f"unsupported key type {kty!r}")


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) over the required members only."""
    kty = jwk.get("kty")
    required = {"EC": ("crv", "x", "y"), "RSA": ("e", "n"), "OKP": ("crv", "x")}.get(str(kty))
    if required is None:
        raise AcmeError(ErrorKind.BAD_PUBLIC_KEY, f"unsupported key type {kty!r}")
    try:
        members = {name: jwk[name] for name in required} | {"kty": kty}
    except KeyError as exc:
        raise AcmeError(ErrorKind.BAD_PUBLIC_KEY, f"{kty} jwk lacks {exc.args[0]!r}") from exc
    if not all(isinstance(value, str) for value in members.values()):
        raise AcmeError(ErrorKind.BAD_PUBLIC_KEY, "jwk members must be strings")
    canonical = msgspec.json.encode(members, order="sorted")
    return b64url(hashlib.sha256(canonical).digest())


def verify(parsed: ParsedJws, key: PublicKey) -> None:
    """Check the signature with ``key``; ``malformed``/``badSignatureAlgorithm`` if not."""
    alg = parsed.alg
    if alg in _EC_ALGS:
        curve_name, size, hash_alg = _EC_ALGS[alg]
        if (
            not isinstance(key, ec.EllipticCurvePublicKey)
            or key.curve.name != _CURVES[curve_name][0].name
        ):
            raise bad_signature_algorithm(alg)
        for candidate in _ecdsa_candidates(parsed.signature, size):
            try:
                key.verify(candidate, parsed.signing_input, ec.ECDSA(hash_alg))
                return
            except InvalidSignature:
                continue
        raise malformed("JWS signature is invalid")
    try:
        if alg == "RS256":
            if not isinstance(key, rsa.RSAPublicKey):
                raise bad_signature_algorithm(alg)
            key.verify(parsed.signature, parsed.signing_input, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "EdDSA":
            if not isinstance(key, ed25519.Ed25519PublicKey):
                raise bad_signature_algorithm(alg)
            key.verify(parsed.signature, parsed.signing_input)
        else:
            raise bad_signature_algorithm(alg)
    except InvalidSignature as exc:
        raise malformed("JWS signature is invalid") from exc


def verify_quietly(parsed: ParsedJws, key: PublicKey) -> bool:
    """:func:`verify` as a yes/no (for trying a cached key before reading the account)."""
    try:
        verify(parsed, key)
    except AcmeError:
        return False
    return True


def _ecdsa_candidates(signature: bytes, size: int) -> list[bytes]:
    """DER signatures to try for a raw R‖S JWS signature.

    Apple's ACME client drops leading zero bytes of R and/or S (docs/apple-attestation.md §10;
    step-ca PR #1631), so a short signature is ambiguous: every split that left-pads both
    halves back to ``size`` bytes is tried. Only signatures at most two bytes short are
    considered (a leading zero occurs with p≈1/256 per half).
    """
    length = len(signature)
    if length == 2 * size:
        splits = [size]
    elif 2 * size - 2 <= length < 2 * size:
        splits = [r for r in range(length - size, size + 1) if 0 < r < length]
    else:
        return []
    candidates = []
    for r_len in splits:
        r, s = signature[:r_len], signature[r_len:]
        if len(r) > size or len(s) > size:
            continue
        candidates.append(encode_dss_signature(int.from_bytes(r, "big"), int.from_bytes(s, "big")))
    return candidates
