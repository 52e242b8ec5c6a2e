"""Apple's real MDA leaf reads as expected, and the test CA mints leaves shaped exactly like it."""

from __future__ import annotations

import base64
import hashlib
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

from acmegate.attestation.apple import read_leaf
from acmegate.common.apple_oids import OID_FRESHNESS
from acmegate.common.errors import AcmeError
from acmegate.common.x509names import spki_der
from acmegate.testkit.apple_ca import AttestationCA, LeafClaims
from acmegate.testkit.attobj import attestation_object, challenge_payload, freshness_code
from tests.unit.attestation.helpers import MINTED, REAL_LEAF, mint

APPLE = "1.2.840.113635.100.8."


@pytest.fixture(scope="module")
def real_leaf() -> x509.Certificate:
    return x509.load_pem_x509_certificate(REAL_LEAF.read_bytes())


def _point(cert: x509.Certificate) -> bytes:
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


# --- Apple's real leaf (macOS 15.5, nanoca's test vector) -------------------------------------


def test_the_real_apple_leaf_reads_into_the_expected_claims(real_leaf: x509.Certificate) -> None:
    claims = read_leaf(real_leaf).claims("apple")

    assert claims.serial_number == "TMWFWWWP67"
    assert claims.udid == "00006030-000651690A84001C"
    assert (claims.os_version, claims.sepos_version, claims.llb_version) == ("15.5",) * 3
    assert claims.software_update_device_id == "J514sAP"
    assert claims.sip_enabled is True
    assert claims.secure_boot == "Full Security"
    assert claims.third_party_kexts_allowed is False
    assert claims.attested_key == spki_der(real_leaf.public_key())
    assert claims.attestation_not_after == datetime(2025, 10, 12, 9, 38, 7, tzinfo=UTC)


def test_the_real_leaf_carries_a_raw_32_byte_freshness_code(real_leaf: x509.Certificate) -> None:
    freshness = read_leaf(real_leaf).freshness
    assert freshness is not None and len(freshness) == 32
    assert freshness.hex().startswith("9ff219c2") and freshness.hex().endswith("2f2d5d62")


def test_the_real_leaf_cn_is_the_sha256_of_its_ec_point(real_leaf: x509.Certificate) -> None:
    [cn] = real_leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert cn.value == hashlib.sha256(_point(real_leaf)).hexdigest()


def _leaf(extensions: list[tuple[str, bytes]], key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf")]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ca")]))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(MINTED)
        .not_valid_after(MINTED + timedelta(days=1))
    )
    for oid, value in extensions:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier(APPLE + oid), value), critical=False
        )
    return builder.sign(key, hashes.SHA384())


def test_der_wrapped_strings_and_raw_integers_are_read_leniently(
    device_key: ec.EllipticCurvePrivateKey,
) -> None:
    leaf = _leaf(
        [
            ("9.1", b"\x0c\x0aTMWFWWWP67"),  # UTF8String
            ("9.2", b"\x04\x03abc"),  # OCTET STRING
            ("10.1", b"\x13\x0418.0"),  # PrintableString
            ("13.1", b"\x01"),  # a raw byte: SIP disabled
            ("13.3", b"1"),  # an ASCII digit: kexts allowed
            ("13.2", b""),  # blank: Apple could not verify it (docs/apple-attestation.md §6)
        ],
        device_key,
    )
    claims = read_leaf(leaf).claims("p")
    assert (claims.serial_number, claims.udid, claims.os_version) == ("TMWFWWWP67", "abc", "18.0")
    assert claims.sip_enabled is False
    assert claims.third_party_kexts_allowed is True
    assert claims.secure_boot is None


def test_a_property_that_is_not_text_is_refused(device_key: ec.EllipticCurvePrivateKey) -> None:
    leaf = _leaf([("9.1", b"\xff\xfe serial")], device_key)
    with pytest.raises(AcmeError, match=r"serial number \(1.2.840.113635.100.8.9.1\) is not UTF-8"):
        read_leaf(leaf)


# --- the test CA mints Apple's shape ---------------------------------------------------------


def _real_claims() -> LeafClaims:
    return LeafClaims(
        serial_number="TMWFWWWP67",
        udid="00006030-000651690A84001C",
        os_version="15.5",
        sepos_version="15.5",
        llb_version="15.5",
        software_update_device_id="J514sAP",
    )


def test_minted_extensions_match_the_real_leaf_in_order_criticality_and_bytes(
    ca: AttestationCA, real_leaf: x509.Certificate
) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    real_freshness = real_leaf.extensions.get_extension_for_oid(OID_FRESHNESS).value
    assert isinstance(real_freshness, x509.UnrecognizedExtension)
    leaf = ca.mint_leaf(
        key.public_key(), _real_claims(), freshness=real_freshness.value, now=MINTED
    )

    def shape(cert: x509.Certificate) -> list[tuple[str, bool, bytes]]:
        return [(e.oid.dotted_string, e.critical, e.value.public_bytes()) for e in cert.extensions]

    assert shape(leaf) == shape(real_leaf)
    assert shape(leaf)[0] == ("2.5.29.19", True, bytes.fromhex("3000"))
    assert shape(leaf)[1] == ("2.5.29.15", True, bytes.fromhex("030204f0"))


def test_minted_names_are_encoded_like_apples(
    ca: AttestationCA, real_leaf: x509.Certificate, device_key: ec.EllipticCurvePrivateKey
) -> None:
    leaf = mint(ca, device_key)
    # Issuer: the same DER as the real leaf's (CN, O UTF8String; C PrintableString).
    assert leaf.issuer.public_bytes() == real_leaf.issuer.public_bytes()
    assert ca.intermediate.subject.public_bytes() == real_leaf.issuer.public_bytes()
    # Subject: CN, OU, O, ST in that order and with the same string types; only the CN differs.
    [ours] = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    [theirs] = real_leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert ours.value == hashlib.sha256(_point(leaf)).hexdigest()
    swapped = leaf.subject.public_bytes().replace(
        str(ours.value).encode(), str(theirs.value).encode()
    )
    assert swapped == real_leaf.subject.public_bytes()


def test_minted_serial_validity_and_signature_follow_the_real_sample(
    ca: AttestationCA, device_key: ec.EllipticCurvePrivateKey
) -> None:
    issued = datetime(2026, 3, 2, 9, 59, 0, 676000, tzinfo=UTC)
    leaf = mint(ca, device_key, now=issued)
    assert leaf.serial_number == int(issued.timestamp() * 1000)  # milliseconds
    assert leaf.serial_number.bit_length() <= 48  # 6 bytes
    assert leaf.not_valid_before_utc == issued.replace(microsecond=0) - timedelta(hours=24)
    assert leaf.not_valid_after_utc == issued.replace(microsecond=0) + timedelta(days=90)
    assert leaf.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA384
    leaf.verify_directly_issued_by(ca.intermediate)


def test_claim_presets_omit_what_apple_omits(
    ca: AttestationCA, device_key: ec.EllipticCurvePrivateKey
) -> None:
    def oids(claims: LeafClaims) -> set[str]:
        leaf = mint(ca, device_key, claims)
        return {e.oid.dotted_string for e in leaf.extensions}

    mac = oids(LeafClaims.macos("C02MAC"))
    assert {APPLE + "13.1", APPLE + "13.2", APPLE + "13.3"} <= mac
    iphone = oids(LeafClaims.ios("F2LPHONE"))
    assert not {APPLE + "13.1", APPLE + "13.2", APPLE + "13.3"} & iphone
    user = oids(LeafClaims.macos("C02MAC").user_enrollment())
    assert not {APPLE + "9.1", APPLE + "9.2"} & user
    assert APPLE + "11.1" in user
    assert LeafClaims.macos("C02A").udid != LeafClaims.macos("C02B").udid


def test_the_test_ca_has_apples_names_and_ca_extensions(ca: AttestationCA) -> None:
    assert ca.root.subject.rfc4514_string() == (
        "C=US,O=Apple Inc.,CN=Apple Enterprise Attestation Root CA"
    )
    assert ca.intermediate.subject.rfc4514_string() == (
        "C=US,O=Apple Inc.,CN=Apple Enterprise Attestation Sub CA 1"
    )
    for cert, key in ((ca.root, ca.root_key), (ca.intermediate, ca.intermediate_key)):
        assert isinstance(key.curve, ec.SECP384R1)
        assert cert.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA384
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
        assert bc.critical and bc.value.ca
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
        assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
        cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    aki = ca.intermediate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest


def test_the_test_ca_saves_and_loads_with_private_keys_kept_private(
    ca: AttestationCA, tmp_path: Path
) -> None:
    directory = tmp_path / "attestation-ca"
    ca.save(directory)
    for name in ("root.key", "sub-ca.key"):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600
    loaded = AttestationCA.load(directory)
    assert loaded.root == ca.root and loaded.intermediate == ca.intermediate
    assert spki_der(loaded.intermediate_key.public_key()) == spki_der(ca.intermediate.public_key())
    assert AttestationCA.load_or_generate(directory).root == ca.root
    fresh = AttestationCA.load_or_generate(tmp_path / "new")
    assert AttestationCA.load(tmp_path / "new").root == fresh.root


# --- the envelope ------------------------------------------------------------------------------


def test_the_attestation_object_is_canonical_cbor_in_apples_key_order(
    ca: AttestationCA, device_key: ec.EllipticCurvePrivateKey
) -> None:
    leaf = mint(ca, device_key)
    leaf_der = leaf.public_bytes(serialization.Encoding.DER)
    att_obj = attestation_object(ca.chain_for(leaf))
    expected_head = bytes.fromhex(
        "a2"  # map(2)
        "63666d74"  # "fmt"
        "656170706c65"  # "apple"
        "6761747453746d74"  # "attStmt"
        "a1"  # map(1)
        "63783563"  # "x5c"
        "82"  # array(2)
        "59"  # bytes, 2-byte length
    ) + len(leaf_der).to_bytes(2, "big")
    assert att_obj.startswith(expected_head + leaf_der)
    assert att_obj.endswith(ca.intermediate.public_bytes(serialization.Encoding.DER))


def test_the_challenge_payload_is_unpadded_base64url_and_the_freshness_code_a_token_hash() -> None:
    payload = challenge_payload(b"\xfb\xff")
    assert payload == {"attObj": "-_8"}
    assert base64.urlsafe_b64decode(payload["attObj"] + "=") == b"\xfb\xff"
    assert freshness_code("abc") == hashlib.sha256(b"abc").digest()
