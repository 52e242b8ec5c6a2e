"""External Account Binding (RFC 8555 §7.3.4): the inner JWS newAccount carries, checked the
way certbot's ``acme`` library writes it, and every deviation refused."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from acme import messages
from cryptography.hazmat.primitives.asymmetric import ec
from josepy.jwk import JWKEC

from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.common.ids import b64url
from acmegate.frontend.eab import EabSecret, verify_binding

URL = "https://acme.example.org/acme/server/new-account"
SECRET = EabSecret()
SECRET._secret = b"k" * 32  # as load() leaves it, without a database
KEY_ID = "eab-test"


def account_jwk() -> tuple[JWKEC, dict[str, Any]]:
    key = JWKEC(key=ec.generate_private_key(ec.SECP256R1()).public_key())
    return key, key.to_partial_json()


def certbot_binding(key: JWKEC, hmac_key: bytes, url: str = URL, kid: str = KEY_ID) -> Any:
    binding = messages.ExternalAccountBinding.from_data(
        account_public_key=key, kid=kid, hmac_key=b64url(hmac_key), directory={"newAccount": url}
    )
    return json.loads(json.dumps(binding))


def handmade(header: dict[str, Any], payload: Any, mac_key: bytes, digest: str = "sha256") -> Any:
    protected = b64url(json.dumps(header).encode())
    body = b64url(json.dumps(payload).encode())
    mac = hmac.digest(mac_key, f"{protected}.{body}".encode(), digest)
    return {"protected": protected, "payload": body, "signature": b64url(mac)}


def test_certbots_binding_verifies_and_names_its_key() -> None:
    key, jwk = account_jwk()
    binding = certbot_binding(key, SECRET.hmac_key(KEY_ID))
    assert verify_binding(SECRET, binding, url=URL, jwk=jwk) == KEY_ID


@pytest.mark.parametrize(("alg", "digest"), [("HS384", "sha384"), ("HS512", "sha512")])
def test_hs384_and_hs512_verify_too(alg: str, digest: str) -> None:
    _, jwk = account_jwk()
    header = {"alg": alg, "kid": KEY_ID, "url": URL}
    binding = handmade(header, jwk, SECRET.hmac_key(KEY_ID), digest)
    assert verify_binding(SECRET, binding, url=URL, jwk=jwk) == KEY_ID


def test_a_wrong_hmac_key_is_unauthorized() -> None:
    key, jwk = account_jwk()
    binding = certbot_binding(key, hashlib.sha256(b"guess").digest())
    with pytest.raises(AcmeError) as caught:
        verify_binding(SECRET, binding, url=URL, jwk=jwk)
    assert caught.value.kind == ErrorKind.UNAUTHORIZED


def test_another_key_ids_mac_does_not_verify() -> None:
    key, jwk = account_jwk()
    binding = certbot_binding(key, SECRET.hmac_key("eab-other"))
    with pytest.raises(AcmeError) as caught:
        verify_binding(SECRET, binding, url=URL, jwk=jwk)
    assert caught.value.kind == ErrorKind.UNAUTHORIZED


@pytest.mark.parametrize(
    ("header", "payload_is_other_key", "why"),
    [
        ({"alg": "RS256", "kid": KEY_ID, "url": URL}, False, "'alg'"),
        ({"alg": "none", "kid": KEY_ID, "url": URL}, False, "'alg'"),
        ({"alg": "HS256", "url": URL}, False, "'kid'"),
        ({"alg": "HS256", "kid": KEY_ID, "url": URL + "x"}, False, "'url'"),
        ({"alg": "HS256", "kid": KEY_ID, "url": URL, "nonce": "n"}, False, "nonce"),
        ({"alg": "HS256", "kid": KEY_ID, "url": URL}, True, "account key"),
    ],
)
def test_a_binding_of_the_wrong_form_is_malformed(
    header: dict[str, Any], payload_is_other_key: bool, why: str
) -> None:
    _, jwk = account_jwk()
    payload = account_jwk()[1] if payload_is_other_key else jwk
    binding = handmade(header, payload, SECRET.hmac_key(KEY_ID))
    with pytest.raises(AcmeError) as caught:
        verify_binding(SECRET, binding, url=URL, jwk=jwk)
    assert caught.value.kind == ErrorKind.MALFORMED
    assert why in caught.value.detail


@pytest.mark.parametrize(
    "binding",
    ["a string", {"protected": "x"}, {"protected": "!!", "payload": "", "signature": ""}, 7],
)
def test_a_binding_that_is_no_jws_is_malformed(binding: Any) -> None:
    _, jwk = account_jwk()
    with pytest.raises(AcmeError) as caught:
        verify_binding(SECRET, binding, url=URL, jwk=jwk)
    assert caught.value.kind == ErrorKind.MALFORMED


def test_hmac_keys_differ_per_key_id_and_per_secret() -> None:
    other = EabSecret()
    other._secret = b"j" * 32
    assert SECRET.hmac_key("eab-a") != SECRET.hmac_key("eab-b")
    assert SECRET.hmac_key("eab-a") != other.hmac_key("eab-a")
    assert len(SECRET.hmac_key("eab-a")) == 32
