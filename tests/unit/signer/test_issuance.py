"""Issuance: a CertificateSpec becomes the certificate a device and a RADIUS server expect."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.common.messages import CertificateSpec, NameAttribute, SanEntry
from acmegate.common.x509names import (
    PERMANENT_IDENTIFIER,
    UPN,
    decode_permanent_identifier,
    decode_utf8_string,
    spki_der,
)
from acmegate.signer.authorities import Authority, load_authorities
from acmegate.signer.issuance import build_certificate, issue
from acmegate.signer.serials import new_serial
from acmegate.signer.setup.keygen import KeyType
from tests.unit.signer.conftest import MakeCa
from tests.unit.signer.helpers import openssl_verify

NOW = datetime.now(UTC).replace(microsecond=0)
DEVICE_KEY = ec.generate_private_key(ec.SECP256R1())


def _spec(**changes: object) -> CertificateSpec:
    spec = CertificateSpec(
        ca="issuing",
        template="device",
        public_key=spki_der(DEVICE_KEY.public_key()),
        subject=[
            NameAttribute(oid="2.5.4.3", value="C02XK0AAJGH5"),
            NameAttribute(oid="2.5.4.10", value="Example, Inc."),
        ],
        sans=[
            SanEntry(type="dns", value="c02xk0aajgh5.devices.example.com"),
            SanEntry(type="rfc822", value="alice@example.com"),
            SanEntry(type="uri", value="urn:uuid:6f1b3c2a-7d1e-4f5a-9c3b-2a1d0e9f8b7c"),
            SanEntry(type="ip", value="2001:db8::7"),
            SanEntry(type="upn", value="alice@corp.example.com"),
            SanEntry(type="permanent_identifier", value="C02XK0AAJGH5"),
        ],
        validity_seconds=30 * 86400,
        key_usage=["digital_signature"],
        extended_key_usage=["1.3.6.1.5.5.7.3.2"],
    )
    return msgspec.structs.replace(spec, **changes)


def _authority(make_ca: MakeCa, key_type: KeyType = "ec-p256") -> tuple[Authority, Path]:
    files, config = make_ca(key_type)
    return load_authorities(config.certificate_authorities)["issuing"], files.chain[0]


async def _issue(authority: Authority, spec: CertificateSpec) -> x509.Certificate:
    return await issue(authority, spec, now=NOW, serial=new_serial())


@pytest.mark.parametrize("key_type", ["ec-p256", "rsa2048"])
async def test_an_issued_certificate_verifies_for_client_authentication(
    make_ca: MakeCa, key_type: KeyType, tmp_path: Path
) -> None:
    authority, root_path = _authority(make_ca, key_type)
    leaf = await _issue(authority, _spec())
    leaf_path = tmp_path / "leaf.pem"
    leaf_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    intermediate_path = tmp_path / "intermediate.pem"
    intermediate_path.write_text(authority.issuer_chain_pem)

    result = openssl_verify(
        "-CAfile", str(root_path), "-untrusted", str(intermediate_path),
        "-purpose", "sslclient", str(leaf_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr

    root = x509.load_pem_x509_certificate(root_path.read_bytes())
    verifier = PolicyBuilder().store(Store([root])).time(NOW).build_client_verifier()
    verified = verifier.verify(leaf, [authority.certificate])
    assert verified.chain == [leaf, authority.certificate, root]


async def test_names_and_extensions_come_from_the_spec(make_ca: MakeCa) -> None:
    authority, _ = _authority(make_ca)
    leaf = await _issue(authority, _spec(signature_hash="sha384"))

    # RFC 4514 writes the last RDN first; the DER keeps the spec's order (checked below).
    assert leaf.subject.rfc4514_string() == "O=Example\\, Inc.,CN=C02XK0AAJGH5"
    assert [a.oid for a in leaf.subject] == [NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME]
    assert leaf.issuer == authority.certificate.subject
    assert spki_der(leaf.public_key()) == spki_der(DEVICE_KEY.public_key())
    assert isinstance(leaf.signature_hash_algorithm, hashes.SHA384)

    san_ext = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert not san_ext.critical  # the subject is not empty
    san = san_ext.value
    assert san.get_values_for_type(x509.DNSName) == ["c02xk0aajgh5.devices.example.com"]
    assert san.get_values_for_type(x509.RFC822Name) == ["alice@example.com"]
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        "urn:uuid:6f1b3c2a-7d1e-4f5a-9c3b-2a1d0e9f8b7c"
    ]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("2001:db8::7")]
    other = {name.type_id: name.value for name in san.get_values_for_type(x509.OtherName)}
    assert decode_permanent_identifier(other[PERMANENT_IDENTIFIER]) == ("C02XK0AAJGH5", None)
    assert decode_utf8_string(other[UPN]) == "alice@corp.example.com"

    basic = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and not basic.value.ca
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature and not usage.value.key_encipherment
    assert not usage.value.key_cert_sign and not usage.value.crl_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert list(eku.value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    ski = leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(DEVICE_KEY.public_key())
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_ski = authority.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert aki.key_identifier == ca_ski.value.digest


async def test_serials_are_positive_random_and_at_most_20_octets(make_ca: MakeCa) -> None:
    authority, _ = _authority(make_ca)
    serials = {(await _issue(authority, _spec())).serial_number for _ in range(20)}
    assert len(serials) == 20
    for serial in serials:
        assert serial > 0
        assert serial.bit_length() == 128  # ≥ 64 random bits (127 here), 17 DER octets


async def test_validity_is_backdated_and_clamped_to_the_ca(make_ca: MakeCa) -> None:
    authority, _ = _authority(make_ca)
    leaf = await _issue(authority, _spec(backdate_seconds=300))
    assert leaf.not_valid_before_utc == NOW - timedelta(seconds=300)
    assert leaf.not_valid_after_utc == NOW + timedelta(days=30)

    forever = await _issue(authority, _spec(validity_seconds=100 * 365 * 86400))
    assert forever.not_valid_after_utc == authority.not_after


async def test_an_empty_subject_makes_the_san_critical(make_ca: MakeCa) -> None:
    authority, _ = _authority(make_ca)
    leaf = await _issue(
        authority, _spec(subject=[], sans=[SanEntry(type="permanent_identifier", value="X")])
    )
    assert len(leaf.subject) == 0
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical


async def test_a_certificate_with_neither_subject_nor_san_is_refused(make_ca: MakeCa) -> None:
    authority, _ = _authority(make_ca)
    with pytest.raises(AcmeError) as caught:
        build_certificate(authority, _spec(subject=[], sans=[]), now=NOW, serial=1)
    assert caught.value.kind is ErrorKind.SERVER_INTERNAL


@pytest.mark.parametrize(
    ("changes", "kind", "words"),
    [
        ({"public_key": b"\x30\x03junk"}, ErrorKind.BAD_PUBLIC_KEY, "cannot be decoded"),
        (
            {
                "public_key": spki_der(
                    rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
                )
            },
            ErrorKind.BAD_PUBLIC_KEY,
            "2048",
        ),
        ({"sans": [SanEntry(type="ip", value="not-an-ip")]}, ErrorKind.BAD_CSR, "not-an-ip"),
        ({"sans": [SanEntry(type="dns", value="bücher.example")]}, ErrorKind.BAD_CSR, "non-ASCII"),
        ({"subject": [NameAttribute(oid="2.5.4.6", value="DEU")]}, ErrorKind.BAD_CSR, "DEU"),
        ({"key_usage": ["key_cert_sign"]}, ErrorKind.SERVER_INTERNAL, "key_cert_sign"),
        ({"extended_key_usage": ["clientAuth"]}, ErrorKind.SERVER_INTERNAL, "OID"),
        ({"validity_seconds": 0}, ErrorKind.SERVER_INTERNAL, "validity"),
    ],
)
def test_a_spec_that_cannot_be_issued_is_refused_before_signing(
    make_ca: MakeCa, changes: dict[str, object], kind: ErrorKind, words: str
) -> None:
    authority, _ = _authority(make_ca)
    with pytest.raises(AcmeError) as caught:
        build_certificate(authority, _spec(**changes), now=NOW, serial=1)
    assert caught.value.kind is kind
    assert words in caught.value.detail


def test_an_expired_ca_issues_nothing(make_ca: MakeCa) -> None:
    authority, _ = _authority(make_ca)
    with pytest.raises(AcmeError, match="expired"):
        build_certificate(authority, _spec(), now=authority.not_after + timedelta(days=1), serial=1)
