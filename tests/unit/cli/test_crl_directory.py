"""The hash OpenSSL files CRLs under in a ``ca_path`` folder (``X509_NAME_hash``), computed
without OpenSSL: the same as ``openssl x509 -hash`` for names of every string type."""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from acmegate.cli.crl_directory import name_hash

NAMES = {
    "plain": x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "E2E Devices CA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "acmegate tests"),
        ]
    ),
    "spaces, case and non-ASCII": x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "  Müller   GmbH  "),
            x509.NameAttribute(NameOID.COMMON_NAME, "Ä Devices\tCA"),
        ]
    ),
    "IA5 and Printable": x509.Name(
        [
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "PKI@Example.COM"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Devices CA", _type=_ASN1Type.PrintableString),
        ]
    ),
    "multi-valued RDN": x509.Name(
        [
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, "B"),
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "a"),
                ]
            )
        ]
    ),
    "BMP and DC": x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Bmp CA", _type=_ASN1Type.BMPString),
            x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "Corp"),
        ]
    ),
}


@pytest.mark.parametrize("name", NAMES.values(), ids=NAMES.keys())
def test_the_name_hash_is_the_one_openssl_computes(name: x509.Name, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "ca.pem"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    done = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert name_hash(name) == done.stdout.strip()
