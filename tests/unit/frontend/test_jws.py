"""Server-side JWS checks (RFC 8555 §6.2): what is accepted and the problem for what is not."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.common.ids import b64url
from acmegate.frontend import jws

EC_SIZES = {
    "ES256": (ec.SECP256R1(), 32, hashes.SHA256()),
    "ES384": (ec.SECP384R1(), 48, hashes.SHA384()),
    "ES512": (ec.SECP521R1(), 66, hashes.SHA512()),
}


def _jwk(key: Any) -> dict[str, str]:
    public = key.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        numbers = public.public_numbers()
        size = (public.curve.key_size + 7) // 8
        crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}[public.curve.name]
        return {
            "kty": "EC",
            "crv": crv,
            "x": b64url(numbers.x.to_bytes(size, "big")),
            "y": b64url(numbers.y.to_bytes(size, "big")),
        }
    if isinstance(public, rsa.RSAPublicKey):
        n = public.public_numbers()
        return {
            "kty": "RSA",
            "n": b64url(n.n.to_bytes((n.n.bit_length() + 7) // 8, "big")),
            "e": b64url(n.e.to_bytes(3, "big")),
        }
    raw = public.public_bytes_raw()
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}


def _sign(
    key: Any, alg: str, header: dict[str, Any], payload: bytes, *, strip: bool = False
) -> bytes:
    protected = b64url(json.dumps({"alg": alg, **header}).encode())
    encoded_payload = b64url(payload)
    signing_input = f"{protected}.{encoded_payload}".encode()
    if alg in EC_SIZES:
        _, size, hash_alg = EC_SIZES[alg]
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hash_alg)))
        rb, sb = r.to_bytes(size, "big"), s.to_bytes(size, "big")
        if strip:
            rb, sb = rb.lstrip(b"\0"), sb.lstrip(b"\0")
        signature = rb + sb
    elif alg == "RS256":
        signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    else:
        signature = key.sign(signing_input)
    return json.dumps(
        {"protected": protected, "payload": encoded_payload, "signature": b64url(signature)}
    ).encode()


def _key(alg: str) -> Any:
    if alg in EC_SIZES:
        return ec.generate_private_key(EC_SIZES[alg][0])
    if alg == "RS256":
        return rsa.generate_private_key(65537, 2048)
    return ed25519.Ed25519PrivateKey.generate()


@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512", "RS256", "EdDSA"])
def test_each_supported_algorithm_verifies_with_its_jwk(alg: str) -> None:
    key = _key(alg)
    body = _sign(key, alg, {"jwk": _jwk(key), "nonce": "n", "url": "u"}, b'{"a":1}')
    parsed = jws.parse(body)
    jws.verify(parsed, jws.public_key_from_jwk(parsed.header["jwk"]))
    assert parsed.payload == b'{"a":1}'


def test_apple_signatures_that_lost_leading_zero_bytes_still_verify() -> None:
    # docs/apple-attestation.md §10: Apple's client strips leading zero bytes of R and S.
    key = ec.generate_private_key(ec.SECP256R1())
    for attempt in range(2000):
        body = _sign(
            key, "ES256", {"kid": "k", "nonce": "n", "url": "u"}, str(attempt).encode(), strip=True
        )
        parsed = jws.parse(body)
        if len(parsed.signature) < 64:
            break
    else:
        pytest.fail("no short signature produced")
    jws.verify(parsed, key.public_key())


def test_a_tampered_payload_is_rejected_as_malformed() -> None:
    key = _key("ES256")
    body = json.loads(_sign(key, "ES256", {"kid": "k", "nonce": "n", "url": "u"}, b"{}"))
    body["payload"] = b64url(b'{"evil":1}')
    with pytest.raises(AcmeError) as caught:
        jws.verify(jws.parse(json.dumps(body).encode()), key.public_key())
    assert caught.value.kind is ErrorKind.MALFORMED


def test_an_algorithm_that_does_not_fit_the_key_is_refused() -> None:
    key = _key("ES384")
    body = _sign(key, "ES384", {"kid": "k", "nonce": "n", "url": "u"}, b"{}")
    parsed = jws.parse(body)
    with pytest.raises(AcmeError) as caught:
        jws.verify(parsed, _key("ES256").public_key())
    assert caught.value.kind is ErrorKind.BAD_SIGNATURE_ALGORITHM


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"not json", ErrorKind.MALFORMED),
        (b"[]", ErrorKind.MALFORMED),
        (
            json.dumps({"protected": "e30", "payload": "", "signature": "", "header": {}}).encode(),
            ErrorKind.MALFORMED,
        ),
        (
            json.dumps(
                {
                    "protected": b64url(b'{"alg":"none","nonce":"n","url":"u","kid":"k"}'),
                    "payload": "",
                    "signature": "",
                }
            ).encode(),
            ErrorKind.BAD_SIGNATURE_ALGORITHM,
        ),
        (
            json.dumps(
                {
                    "protected": b64url(b'{"alg":"HS256","nonce":"n","url":"u","kid":"k"}'),
                    "payload": "",
                    "signature": "",
                }
            ).encode(),
            ErrorKind.BAD_SIGNATURE_ALGORITHM,
        ),
        (
            json.dumps(
                {
                    "protected": b64url(b'{"alg":"ES256","url":"u","kid":"k"}'),
                    "payload": "",
                    "signature": "",
                }
            ).encode(),
            ErrorKind.MALFORMED,
        ),
        (
            json.dumps(
                {
                    "protected": b64url(b'{"alg":"ES256","nonce":"n","url":"u"}'),
                    "payload": "",
                    "signature": "",
                }
            ).encode(),
            ErrorKind.MALFORMED,
        ),
        (
            json.dumps(
                {
                    "protected": b64url(
                        b'{"alg":"ES256","nonce":"n","url":"u","kid":"k","jwk":{}}'
                    ),
                    "payload": "",
                    "signature": "",
                }
            ).encode(),
            ErrorKind.MALFORMED,
        ),
        (
            json.dumps(
                {
                    "protected": b64url(b'{"alg":"ES256","nonce":"n","url":"u","kid":"k"}') + "=",
                    "payload": "",
                    "signature": "",
                }
            ).encode(),
            ErrorKind.MALFORMED,
        ),
        (
            json.dumps(
                {
                    "protected": b64url(
                        b'{"alg":"ES256","nonce":"n","url":"u","kid":"k","b64":false}'
                    ),
                    "payload": "",
                    "signature": "",
                }
            ).encode(),
            ErrorKind.MALFORMED,
        ),
        (
            json.dumps(
                {
                    "protected": b64url(
                        b'{"alg":"ES256","nonce":"n","url":"other","kid":"k","url":"u"}'
                    ),
                    "payload": "",
                    "signature": "",
                }
            ).encode(),
            ErrorKind.MALFORMED,
        ),
        (
            json.dumps(
                {
                    "protected": b64url(
                        b'{"alg":"ES256","nonce":"n","url":"u",'
                        b'"jwk":{"kty":"EC","crv":"P-256","x":"a","x":"b","y":"c"}}'
                    ),
                    "payload": "",
                    "signature": "",
                }
            ).encode(),
            ErrorKind.MALFORMED,
        ),
    ],
    ids=[
        "not-json",
        "not-object",
        "unprotected-header",
        "alg-none",
        "alg-hmac",
        "no-nonce",
        "neither-jwk-nor-kid",
        "both-jwk-and-kid",
        "padded-base64",
        "unencoded-payload-b64",
        "duplicated-url",
        "duplicated-jwk-member",
    ],
)
def test_structural_problems_get_their_acme_error(body: bytes, kind: ErrorKind) -> None:
    with pytest.raises(AcmeError) as caught:
        jws.parse(body)
    assert caught.value.kind is kind


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
        {"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA"},
        {"kty": "oct", "k": "AAAA"},
        {"kty": "RSA", "n": b64url((2**1023 + 1).to_bytes(128, "big")), "e": "AQAB"},
    ],
    ids=["short-coordinates", "unsupported-curve", "symmetric", "rsa-1024"],
)
def test_unusable_keys_are_bad_public_keys(jwk: dict[str, str]) -> None:
    with pytest.raises(AcmeError) as caught:
        jws.public_key_from_jwk(jwk)
    assert caught.value.kind is ErrorKind.BAD_PUBLIC_KEY


def test_a_private_jwk_is_refused() -> None:
    jwk = _jwk(_key("ES256")) | {"d": "AAAA"}
    with pytest.raises(AcmeError) as caught:
        jws.public_key_from_jwk(jwk)
    assert caught.value.kind is ErrorKind.BAD_PUBLIC_KEY


def test_thumbprint_matches_rfc7638_example() -> None:
    # RFC 7638 §3.1 example key and thumbprint.
    jwk = {
        "kty": "RSA",
        "n": (
            "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1"
            "L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4"
            "QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbO"
            "pbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csF"
            "Cur-kEgU8awapJzKnqDKgw"
        ),
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert jws.thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
