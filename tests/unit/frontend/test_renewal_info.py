"""ARI (RFC 9773) certIDs and suggested windows: the encoding of §4.1 both ways, and the
windows of §4.2."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.frontend.renewal_info import (
    CertId,
    cert_id_of,
    parse_cert_id,
    serial_octets,
    suggested_window,
)

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def test_the_rfcs_example_cert_id_reads_back() -> None:
    # RFC 9773 §4.1's example: keyIdentifier 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:
    # DE:01:C8:D4, serial 00:87:65:43:21.
    text = "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
    parsed = parse_cert_id(text)
    assert parsed.key_identifier.hex() == "69885b6b87464041e1b37b847ba0ae2cde01c8d4"
    assert parsed.serial == 0x87654321
    assert str(parsed) == text


@pytest.mark.parametrize("serial", [1, 0x7F, 0x80, 0xFF, 0x100, 0x87654321, 2**159 - 1])
def test_serials_use_the_shortest_der_content_octets(serial: int) -> None:
    octets = serial_octets(serial)
    assert int.from_bytes(octets, "big", signed=True) == serial
    assert not (len(octets) > 1 and octets[0] == 0 and octets[1] < 0x80)
    assert parse_cert_id(str(CertId(b"\x01", serial))).serial == serial


@pytest.mark.parametrize(
    "text", ["", "AQ", "AQ.", ".AQ", "AQ.gA", "AQ.AAE", "AQ.AA", "A=.AQ", "AQ.AQ.AQ"]
)
def test_anything_else_is_malformed(text: str) -> None:
    with pytest.raises(AcmeError) as caught:
        parse_cert_id(text)
    assert caught.value.kind == ErrorKind.MALFORMED


def _certificate(days: int) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "t")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(0x80AB)
        .not_valid_before(NOW)
        .not_valid_after(NOW + datetime.timedelta(days=days))
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
        .sign(key, hashes.SHA256())
    )


def test_the_window_is_the_last_third_but_a_ninth() -> None:
    leaf = _certificate(90)
    window = suggested_window(leaf, revoked=False, now=NOW)
    assert window.start == NOW + datetime.timedelta(days=60)
    assert window.end == NOW + datetime.timedelta(days=80)
    assert cert_id_of(leaf).serial == 0x80AB


def test_a_revoked_certificates_window_has_begun() -> None:
    window = suggested_window(_certificate(90), revoked=True, now=NOW)
    assert window.start < NOW < window.end
