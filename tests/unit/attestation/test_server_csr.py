"""The finalize CSR of a server order names exactly the order's identifiers (RFC 8555 §7.4);
no attested key is involved."""

from __future__ import annotations

import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from acmegate.attestation.csr import check_csr
from acmegate.common.errors import ErrorKind
from acmegate.common.messages import FinalizeOrder, Identifier
from tests.unit.attestation.helpers import expect_problem
from tests.unit.attestation.test_csr import make_csr


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def server_order(csr_der: bytes, *identifiers: tuple[str, str]) -> FinalizeOrder:
    return FinalizeOrder(
        correlation_id="c",
        order_id="o",
        account_id="a",
        identifiers=[Identifier(t, v) for t, v in identifiers],
        csr_der=csr_der,
        claims=[],
    )


def test_a_csr_naming_the_identifiers_is_accepted(key: ec.EllipticCurvePrivateKey) -> None:
    names: list[x509.GeneralName] = [
        x509.DNSName("Radius.Example.test"),
        x509.IPAddress(ipaddress.ip_address("192.0.2.1")),
    ]
    der = make_csr(key, cn="radius.example.test", names=names)
    info = check_csr(server_order(der, ("dns", "radius.example.test"), ("ip", "192.0.2.1")), {})
    assert info.dns_names == ["Radius.Example.test"]
    assert info.ip_addresses == ["192.0.2.1"]


@pytest.mark.parametrize(
    ("names", "cn", "detail"),
    [
        (["a.example.test", "b.example.test"], None, "exactly the order's identifiers"),
        ([], None, "exactly the order's identifiers"),
        (["a.example.test"], "other.example.test", "common name"),
    ],
)
def test_a_csr_naming_other_names_is_a_bad_csr(
    key: ec.EllipticCurvePrivateKey, names: list[str], cn: str | None, detail: str
) -> None:
    der = make_csr(key, cn=cn, names=[x509.DNSName(n) for n in names] or None)
    expect_problem(
        ErrorKind.BAD_CSR,
        lambda: check_csr(server_order(der, ("dns", "a.example.test")), {}),
        detail=detail,
    )


def test_a_device_name_in_a_server_csr_is_a_bad_csr(key: ec.EllipticCurvePrivateKey) -> None:
    names: list[x509.GeneralName] = [
        x509.DNSName("a.example.test"),
        x509.RFC822Name("someone@example.test"),
    ]
    der = make_csr(key, cn=None, names=names)
    expect_problem(
        ErrorKind.BAD_CSR,
        lambda: check_csr(server_order(der, ("dns", "a.example.test")), {}),
        detail="only DNS names and IP addresses",
    )
