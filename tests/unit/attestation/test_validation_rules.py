"""The pure rules of http-01 redirects (RFC 8555 §8.3, as Let's Encrypt follows them) and of
tls-alpn-01 certificates (RFC 8737 §3, RFC 8738 §6)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from acmegate.attestation.validation.http01 import HttpRules, _next_url, challenge_url
from acmegate.attestation.validation.tls_alpn01 import check_certificate, sni_name
from acmegate.common.errors import AcmeError, ErrorKind
from tests.support.tls_alpn import challenge_certificate

RULES = HttpRules(port=80, tls_port=443, max_body_bytes=8192, max_redirects=10)
HERE = "http://a.example.test:80/.well-known/acme-challenge/t"


@pytest.mark.parametrize(
    "location",
    [
        "https://b.example.test/x",
        "http://b.example.test/x",
        "/elsewhere",
        "https://[2001:db8::1]:443/x",
    ],
)
def test_redirects_to_http_80_and_https_443_are_followed(location: str) -> None:
    assert _next_url(HERE, location, RULES).startswith(("http://", "https://"))


@pytest.mark.parametrize(
    "location",
    ["ftp://b.example.test/x", "http://b.example.test:8080/x", "https://b.example.test:80/", None],
)
def test_other_redirects_are_connection_problems(location: str | None) -> None:
    with pytest.raises(AcmeError) as caught:
        _next_url(HERE, location, RULES)
    assert caught.value.kind is ErrorKind.CONNECTION


def test_ipv6_challenge_urls_bracket_the_address() -> None:
    assert (
        challenge_url("2001:db8::1", "t", 80)
        == "http://[2001:db8::1]:80/.well-known/acme-challenge/t"
    )


def test_an_ip_address_is_named_by_its_reverse_name_in_sni() -> None:
    assert sni_name("192.0.2.1", True) == "1.2.0.192.in-addr.arpa"
    assert sni_name("a.example.test", False) == "a.example.test"


def test_the_challenge_certificate_must_hold_the_key_authorization_digest(tmp_path: Path) -> None:
    cert_path, _ = challenge_certificate("192.0.2.1", "tok.thumb", tmp_path)
    der = x509.load_pem_x509_certificate(cert_path.read_bytes()).public_bytes(Encoding.DER)
    check_certificate(der, name="192.0.2.1", is_ip=True, key_authorization="tok.thumb")
    with pytest.raises(AcmeError) as caught:
        check_certificate(der, name="192.0.2.1", is_ip=True, key_authorization="tok.other")
    assert caught.value.kind is ErrorKind.INCORRECT_RESPONSE
    with pytest.raises(AcmeError):
        check_certificate(der, name="192.0.2.2", is_ip=True, key_authorization="tok.thumb")
