"""What FreeRADIUS presents, which identity a RADIUS lookup policy reads, and whose
certificates the endpoint trusts (docs/radius.md)."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from acmegate.common.x509names import PERMANENT_IDENTIFIER, encode_permanent_identifier
from acmegate.policy.radius import (
    CaTrust,
    MalformedRequest,
    Presented,
    Untrusted,
    identity_of,
    oneline,
    parse,
)
from tests.unit.policy.builders import make_config

NOW = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)


@dataclass
class Ca:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    def issue(
        self,
        *,
        cn: str = "C02JAMF0001",
        dns: str | None = "c02jamf0001.devices.example.com",
        permanent_identifier: str | None = "C02JAMF0001",
        eku: list[x509.ObjectIdentifier] | None = None,
        not_after: datetime.datetime | None = None,
    ) -> x509.Certificate:
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = []
        if dns:
            names.append(x509.DNSName(dns))
        if permanent_identifier:
            names.append(
                x509.OtherName(
                    PERMANENT_IDENTIFIER, encode_permanent_identifier(permanent_identifier)
                )
            )
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - datetime.timedelta(days=1))
            .not_valid_after(not_after or NOW + datetime.timedelta(days=30))
            .add_extension(
                x509.ExtendedKeyUsage(eku or [ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
            )
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(self.key, hashes.SHA256())


def make_ca(common_name: str) -> Ca:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "acmegate tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=10))
        .not_valid_after(NOW + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Ca(key, certificate)


def pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def ours() -> Ca:
    return make_ca("Devices CA")


@pytest.fixture
def trust(ours: Ca, tmp_path: Path) -> CaTrust:
    (tmp_path / "ca.pem").write_bytes(pem(ours.certificate))
    config = make_config(base_dir=tmp_path)
    return CaTrust.from_config(config)


def test_a_pem_body_a_json_body_and_a_der_body_carry_the_certificate(ours: Ca) -> None:
    leaf = ours.issue()
    chain = pem(leaf) + pem(ours.certificate)
    for presented in (
        parse(chain, "application/x-pem-file"),
        parse(json.dumps({"certificate": chain.decode()}).encode(), "application/json"),
        parse(leaf.public_bytes(serialization.Encoding.DER), "application/pkix-cert"),
    ):
        assert presented.certificate == leaf
        assert presented.serial_hex == format(leaf.serial_number, "x")


def test_rlm_rest_attributes_in_json_and_form_encodings() -> None:
    body = {
        "User-Name": {"type": "string", "value": ["host/mac"]},
        "TLS-Client-Cert-Serial": {"type": "string", "value": ["0A1B2C"]},
        "TLS-Client-Cert-Common-Name": {"type": "string", "value": ["C02JAMF0001"]},
        "TLS-Client-Cert-Issuer": {"type": "string", "value": ["/O=acmegate tests/CN=Devices CA"]},
    }
    presented = parse(json.dumps(body).encode(), "application/json")
    assert presented.certificate is None
    assert presented.attribute("TLS-Client-Cert-Common-Name") == "C02JAMF0001"
    assert presented.serial_hex == "a1b2c"
    form = b"TLS-Client-Cert-Subject-Alt-Name-Dns=mac.example.com&request%3AUser-Name=host"
    posted = parse(form, "application/x-www-form-urlencoded")
    assert posted.attribute("TLS-Client-Cert-Subject-Alt-Name-Dns") == "mac.example.com"
    assert posted.attribute("User-Name") == "host"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", "application/json"),
        (b"{not json", "application/json"),
        (b'{"User-Name": "x"}', "application/json"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "text/plain"),
        (b"\x30\x03\x02\x01\x00", "application/pkix-cert"),
    ],
    ids=["empty", "not-json", "no-tls-attributes", "bad-pem", "bad-der"],
)
def test_a_body_without_a_certificate_or_its_attributes_is_malformed(
    body: bytes, content_type: str
) -> None:
    with pytest.raises(MalformedRequest):
        parse(body, content_type)


def test_each_radius_identity_is_read_from_the_certificate(ours: Ca) -> None:
    presented = Presented(certificate=ours.issue())
    assert identity_of(presented, "certificate_san_dns") == "c02jamf0001.devices.example.com"
    assert identity_of(presented, "certificate_permanent_identifier") == "C02JAMF0001"
    assert identity_of(presented, "certificate_common_name") == "C02JAMF0001"
    bare = Presented(certificate=ours.issue(dns=None, permanent_identifier=None))
    assert identity_of(bare, "certificate_san_dns") is None
    assert identity_of(bare, "certificate_permanent_identifier") is None


def test_attribute_mode_offers_what_freeradius_exposes_and_no_permanent_identifier() -> None:
    presented = Presented(
        attributes={
            "TLS-Client-Cert-Common-Name": ["C02JAMF0001"],
            "TLS-Client-Cert-Subject-Alt-Name-Dns": ["mac.example.com"],
        }
    )
    assert identity_of(presented, "certificate_common_name") == "C02JAMF0001"
    assert identity_of(presented, "certificate_san_dns") == "mac.example.com"
    assert identity_of(presented, "certificate_permanent_identifier") is None


def refusal(check: Callable[[], str]) -> str | None:
    """Why ``check`` refused (its :class:`Untrusted` message), or ``None`` if it passed."""
    try:
        check()
    except Untrusted as exc:
        return str(exc)
    return None


def test_only_valid_client_certificates_of_the_gateways_cas_are_trusted(
    ours: Ca, trust: CaTrust
) -> None:
    assert trust.issuer_of(ours.issue(), NOW) == "devices-ca"
    foreign = make_ca("Devices CA")  # same name, another key: the signature gives it away
    assert refusal(lambda: trust.issuer_of(foreign.issue(), NOW)) == (
        "the certificate's signature does not verify with CA 'devices-ca'"
    )
    stranger = make_ca("Someone Else CA")
    assert refusal(lambda: trust.issuer_of(stranger.issue(), NOW)) == (
        "the certificate was not issued by this gateway "
        "(issuer /O=acmegate tests/CN=Someone Else CA)"
    )
    expired = ours.issue(not_after=NOW - datetime.timedelta(seconds=1))
    assert refusal(lambda: trust.issuer_of(expired, NOW)) == (
        "the certificate is expired or not yet valid"
    )
    server_only = ours.issue(eku=[ExtendedKeyUsageOID.SERVER_AUTH])
    assert "no clientAuth" in (refusal(lambda: trust.issuer_of(server_only, NOW)) or "")


def test_in_attribute_mode_the_issuer_name_must_be_one_of_ours(ours: Ca, trust: CaTrust) -> None:
    assert oneline(ours.certificate.subject) == "/O=acmegate tests/CN=Devices CA"
    assert trust.issuer_named("/O=acmegate tests/CN=Devices CA") == "devices-ca"
    assert trust.issuer_named("O=acmegate tests, CN=Devices CA") == "devices-ca"
    assert refusal(lambda: trust.issuer_named("/O=evil/CN=Devices CA")) is not None
    assert refusal(lambda: trust.issuer_named(None)) == (
        "FreeRADIUS sent no TLS-Client-Cert-Issuer"
    )
