"""jws.py: every algorithm verifies with `cryptography`; Apple's short-signature bug on demand."""

from __future__ import annotations

import json

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from acmegate.testkit.jws import (
    Algorithm,
    JwsSigner,
    LeadingZeros,
    b64url,
    b64url_decode,
    jwk_thumbprint,
    key_authorization,
    public_jwk,
    sign_flattened,
)

_EC = {
    Algorithm.ES256: (32, hashes.SHA256()),
    Algorithm.ES384: (48, hashes.SHA384()),
    Algorithm.ES512: (66, hashes.SHA512()),
}


def _verify(signer: JwsSigner, jws: dict[str, str], *, pad: bool = False) -> None:
    """Verify like a strict RFC 7515 server would, with only `cryptography`."""
    signing_input = f"{jws['protected']}.{jws['payload']}".encode()
    signature = b64url_decode(jws["signature"])
    public = signer.key.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        size, digest = _EC[signer.alg]
        assert len(signature) == 2 * size
        r = int.from_bytes(signature[:size], "big")
        s = int.from_bytes(signature[size:], "big")
        public.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(digest))
    elif isinstance(public, rsa.RSAPublicKey):
        public.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    else:
        assert isinstance(public, ed25519.Ed25519PublicKey)
        public.verify(signature, signing_input)


@pytest.mark.parametrize("alg", list(Algorithm))
def test_flattened_jws_verifies_with_cryptography_for_every_algorithm(alg: Algorithm) -> None:
    signer = JwsSigner.generate(alg)
    header = signer.protected_header(url="https://acme.test/new-order", nonce="n1", kid="k")
    jws = signer.sign(header, {"identifiers": []})

    _verify(signer, jws)
    decoded = json.loads(b64url_decode(jws["protected"]))
    assert decoded == {
        "alg": str(alg),
        "kid": "k",
        "nonce": "n1",
        "url": "https://acme.test/new-order",
    }
    assert json.loads(b64url_decode(jws["payload"])) == {"identifiers": []}
    assert "=" not in jws["protected"] + jws["payload"] + jws["signature"]


def test_a_tampered_payload_does_not_verify() -> None:
    signer = JwsSigner.generate()
    jws = signer.sign({"alg": "ES256", "nonce": "n", "url": "u", "kid": "k"}, {"a": 1})
    jws["payload"] = b64url(b'{"a":2}')
    with pytest.raises(InvalidSignature):
        _verify(signer, jws)


def test_post_as_get_has_an_empty_payload() -> None:
    signer = JwsSigner.generate()
    jws = signer.sign(signer.protected_header(url="u", nonce="n", kid="k"), None)
    assert jws["payload"] == ""
    _verify(signer, jws)


def test_new_account_header_carries_the_jwk_and_no_kid() -> None:
    signer = JwsSigner.generate()
    header = signer.protected_header(url="u", nonce="n", kid=None)
    assert header["jwk"] == signer.jwk
    assert "kid" not in header


def test_ec_jwk_has_fixed_width_coordinates_of_the_public_key() -> None:
    key = ec.generate_private_key(ec.SECP521R1())
    jwk = public_jwk(key)
    numbers = key.public_key().public_numbers()
    assert jwk["kty"] == "EC" and jwk["crv"] == "P-521"
    assert len(b64url_decode(jwk["x"])) == 66 and len(b64url_decode(jwk["y"])) == 66
    assert int.from_bytes(b64url_decode(jwk["x"]), "big") == numbers.x
    assert int.from_bytes(b64url_decode(jwk["y"]), "big") == numbers.y


def test_okp_jwk_for_ed25519() -> None:
    jwk = public_jwk(ed25519.Ed25519PrivateKey.generate())
    assert set(jwk) == {"kty", "crv", "x"} and jwk["crv"] == "Ed25519"
    assert len(b64url_decode(jwk["x"])) == 32


def test_rfc7638_thumbprint_test_vector() -> None:
    # RFC 7638 §3.1.
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSo"
        "c_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FD"
        "W2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh"
        "6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_key_authorization_is_token_dot_thumbprint() -> None:
    signer = JwsSigner.generate()
    assert key_authorization("tok", signer.jwk) == f"tok.{signer.thumbprint}"


@pytest.mark.parametrize(
    ("mode", "short"),
    [(LeadingZeros.FORCE_R, "r"), (LeadingZeros.FORCE_S, "s"), (LeadingZeros.FORCE_ANY, None)],
)
def test_forced_apple_signature_is_short_and_verifies_once_left_padded(
    mode: LeadingZeros, short: str | None
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    header = {"alg": "ES256", "nonce": "n", "url": "u", "kid": "k"}
    jws = sign_flattened(key, header, {"csr": "x"}, leading_zeros=mode)
    signature = b64url_decode(jws["signature"])
    assert (
        len(signature) < 64
    )  # Apple's bug: "have 63 bytes, wanted 64" (docs/apple-attestation.md §10)

    signing_input = f"{jws['protected']}.{jws['payload']}".encode()
    # Try the two paddings a tolerant server (step-ca PR #1631) tries: pad R, or pad S.
    candidates = {}
    missing = 64 - len(signature)
    for split in range(32 - missing, 33):
        r_bytes, s_bytes = signature[:split], signature[split:]
        if len(r_bytes) <= 32 and len(s_bytes) <= 32:
            candidates[(len(r_bytes), len(s_bytes))] = (
                int.from_bytes(r_bytes, "big"),
                int.from_bytes(s_bytes, "big"),
            )
    verified = []
    for (r_len, s_len), (r, s) in candidates.items():
        try:
            key.public_key().verify(
                encode_dss_signature(r, s), signing_input, ec.ECDSA(hashes.SHA256())
            )
        except InvalidSignature:
            continue
        verified.append((r_len, s_len))
    assert verified, "no left-padding of R or S verifies"
    if short == "r":
        assert any(r_len < 32 for r_len, _ in verified)
    if short == "s":
        assert any(s_len < 32 for _, s_len in verified)


def test_strip_mode_only_shortens_signatures_that_have_a_leading_zero() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    signer = JwsSigner(key, LeadingZeros.STRIP)
    lengths = {
        len(b64url_decode(signer.sign({"alg": "ES256"}, None)["signature"])) for _ in range(400)
    }
    # ≈1/128 of ES256 signatures are short; over 400 signatures most are full width.
    assert 64 in lengths
    assert lengths <= {62, 63, 64}


def test_keep_mode_is_always_fixed_width() -> None:
    signer = JwsSigner.generate(Algorithm.ES256)
    for _ in range(300):
        assert len(b64url_decode(signer.sign({"alg": "ES256"}, None)["signature"])) == 64
