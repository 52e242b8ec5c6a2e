"""The finalize CSR must be self-signed with the attested key and name only the attested device."""

from __future__ import annotations

import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from acmegate.attestation.csr import check_csr
from acmegate.common.config.model import AttestationProviderConfig
from acmegate.common.errors import ErrorKind
from acmegate.common.messages import (
    DeviceClaims,
    FinalizeOrder,
    Identifier,
    PermanentIdentifierName,
)
from acmegate.common.x509names import (
    PERMANENT_IDENTIFIER,
    UPN,
    encode_permanent_identifier,
    encode_utf8_string,
    spki_der,
)
from tests.unit.attestation.helpers import SERIAL, UDID, expect_problem

PROVIDERS = {"test": AttestationProviderConfig(name="test")}
BAD_CSR = ErrorKind.BAD_CSR


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def make_csr(
    key: CertificateIssuerPrivateKeyTypes,
    *,
    cn: str | list[str] | None = SERIAL,
    names: list[x509.GeneralName] | None = None,
) -> bytes:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, c) for c in _list(cn)]
    attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Corp"))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attributes))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA384()
    return builder.sign(key, algorithm).public_bytes(Encoding.DER)


def _list(cn: str | list[str] | None) -> list[str]:
    return [] if cn is None else [cn] if isinstance(cn, str) else cn


def permanent(value: str, assigner: str | None = None) -> x509.OtherName:
    return x509.OtherName(PERMANENT_IDENTIFIER, encode_permanent_identifier(value, assigner))


def order(
    csr_der: bytes,
    attested_key: bytes | None,
    *,
    identifier: str = SERIAL,
    platform: str | None = None,
    provider: str = "test",
) -> FinalizeOrder:
    claims = (
        []
        if attested_key is None
        else [
            DeviceClaims(
                provider=provider,
                format="apple",
                attested_key=attested_key,
                serial_number=SERIAL,
                udid=UDID,
            )
        ]
    )
    return FinalizeOrder(
        correlation_id="corr-1",
        order_id="order-1",
        account_id="acct-1",
        identifiers=[Identifier(type="permanent-identifier", value=identifier)],
        csr_der=csr_der,
        claims=claims,
        platform=platform,
    )


# --- accepted -------------------------------------------------------------------------------


def test_a_csr_with_the_attested_key_yields_its_names(key: ec.EllipticCurvePrivateKey) -> None:
    names: list[x509.GeneralName] = [
        permanent(SERIAL),
        x509.OtherName(UPN, encode_utf8_string("alice@example.com")),
        x509.DNSName("mac-1.example.com"),
        x509.RFC822Name("alice@example.com"),
        x509.UniformResourceIdentifier("urn:device:1"),
        x509.IPAddress(ipaddress.ip_address("192.0.2.7")),
    ]
    attested = spki_der(key.public_key())

    info = check_csr(order(make_csr(key, names=names), attested), PROVIDERS)

    assert info.public_key == attested
    assert info.subject == [("2.5.4.3", SERIAL), ("2.5.4.10", "Example Corp")]
    assert info.common_name == SERIAL
    assert info.permanent_identifiers == [PermanentIdentifierName(value=SERIAL)]
    assert info.upns == ["alice@example.com"]
    assert info.dns_names == ["mac-1.example.com"]
    assert info.emails == ["alice@example.com"]
    assert info.uris == ["urn:device:1"]
    assert info.ip_addresses == ["192.0.2.7"]


@pytest.mark.parametrize("cn", [SERIAL, UDID, None], ids=["serial", "udid", "no-cn"])
def test_the_common_name_may_be_the_identifier_or_an_attested_one(
    key: ec.EllipticCurvePrivateKey, cn: str | None
) -> None:
    info = check_csr(order(make_csr(key, cn=cn), spki_der(key.public_key())), PROVIDERS)
    assert info.common_name == cn


def test_a_permanent_identifier_with_assigner_matches_the_order_value(
    key: ec.EllipticCurvePrivateKey,
) -> None:
    csr = make_csr(key, names=[permanent(SERIAL, "1.2.3.4")])
    info = check_csr(
        order(csr, spki_der(key.public_key()), identifier=f"{SERIAL}/1.2.3.4"), PROVIDERS
    )
    assert info.permanent_identifiers == [PermanentIdentifierName(SERIAL, "1.2.3.4")]


def test_in_token_mode_the_csr_names_the_attested_device(key: ec.EllipticCurvePrivateKey) -> None:
    csr = make_csr(key, cn=SERIAL, names=[permanent(UDID)])
    info = check_csr(
        order(csr, spki_der(key.public_key()), identifier="tok-secret", platform="jamf"),
        PROVIDERS,
    )
    assert info.common_name == SERIAL


def test_with_csr_common_name_any_the_template_decides(key: ec.EllipticCurvePrivateKey) -> None:
    providers = {"test": AttestationProviderConfig(name="test", csr_common_name="any")}
    info = check_csr(order(make_csr(key, cn="Alice's Mac"), spki_der(key.public_key())), providers)
    assert info.common_name == "Alice's Mac"


@pytest.mark.parametrize(
    "other",
    [
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ed25519.Ed25519PrivateKey.generate(),
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP521R1()),
    ],
    ids=["rsa-2048", "ed25519", "p-256", "p-521"],
)
def test_supported_key_types_are_accepted(other: CertificateIssuerPrivateKeyTypes) -> None:
    attested = spki_der(other.public_key())
    assert check_csr(order(make_csr(other), attested), PROVIDERS).public_key == attested


# --- refused --------------------------------------------------------------------------------


def test_a_csr_for_another_key_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    other = ec.generate_private_key(ec.SECP384R1())
    expect_problem(
        BAD_CSR,
        lambda: check_csr(order(make_csr(other), spki_der(key.public_key())), PROVIDERS),
        detail="is not the attested key",
    )


def test_a_csr_with_a_broken_signature_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    csr = bytearray(make_csr(key))
    csr[-1] ^= 0x01  # inside the signature's S integer: still DER, no longer valid
    expect_problem(
        BAD_CSR,
        lambda: check_csr(order(bytes(csr), spki_der(key.public_key())), PROVIDERS),
        detail="CSR signature is not valid",
    )


def test_garbage_is_not_a_csr(key: ec.EllipticCurvePrivateKey) -> None:
    expect_problem(
        BAD_CSR,
        lambda: check_csr(order(b"\x30\x03\x02\x01\x00", b""), PROVIDERS),
        detail="not a DER PKCS#10",
    )


def test_a_common_name_naming_another_device_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    expect_problem(
        BAD_CSR,
        lambda: check_csr(
            order(make_csr(key, cn="C02SOMEONEELSE"), spki_der(key.public_key())), PROVIDERS
        ),
        detail="CSR common name 'C02SOMEONEELSE' is neither the order identifier nor",
    )


def test_two_common_names_are_refused(key: ec.EllipticCurvePrivateKey) -> None:
    expect_problem(
        BAD_CSR,
        lambda: check_csr(
            order(make_csr(key, cn=[SERIAL, UDID]), spki_der(key.public_key())), PROVIDERS
        ),
        detail="more than one common name",
    )


def test_a_permanent_identifier_naming_another_device_is_refused(
    key: ec.EllipticCurvePrivateKey,
) -> None:
    csr = make_csr(key, names=[permanent("C02SOMEONEELSE")])
    expect_problem(
        BAD_CSR,
        lambda: check_csr(order(csr, spki_der(key.public_key())), PROVIDERS),
        detail=f"PermanentIdentifier 'C02SOMEONEELSE' does not match the order ('{SERIAL}')",
    )


def test_in_token_mode_the_permanent_identifier_must_be_attested_and_the_token_stays_secret(
    key: ec.EllipticCurvePrivateKey,
) -> None:
    csr = make_csr(key, cn="C02SOMEONEELSE", names=[permanent("tok-secret")])
    problem = expect_problem(
        BAD_CSR,
        lambda: check_csr(
            order(csr, spki_der(key.public_key()), identifier="tok-secret", platform="jamf"),
            PROVIDERS,
        ),
        detail="does not match the attested serial number or UDID",
    )
    assert problem.detail.count("tok-secret") == 1  # the CSR's own value, not the order's


def test_in_token_mode_a_wrong_common_name_does_not_reveal_the_token(
    key: ec.EllipticCurvePrivateKey,
) -> None:
    problem = expect_problem(
        BAD_CSR,
        lambda: check_csr(
            order(
                make_csr(key, cn="C02SOMEONEELSE"),
                spki_der(key.public_key()),
                identifier="tok-secret",
                platform="jamf",
            ),
            PROVIDERS,
        ),
        detail="CSR common name",
    )
    assert "tok-secret" not in problem.detail


def test_a_weak_rsa_key_is_refused() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    expect_problem(
        BAD_CSR,
        lambda: check_csr(order(make_csr(weak), spki_der(weak.public_key())), PROVIDERS),
        detail="1024 bits",
    )


def test_an_order_without_attestation_gets_no_certificate(key: ec.EllipticCurvePrivateKey) -> None:
    expect_problem(
        ErrorKind.UNAUTHORIZED,
        lambda: check_csr(order(make_csr(key), None), PROVIDERS),
        detail="no attested key",
    )
