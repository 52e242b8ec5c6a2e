"""What the simulated device sends, checked without a server: CSR, attObj and each DeviceMode."""

from __future__ import annotations

import hashlib

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from acmegate.common.x509names import (
    PERMANENT_IDENTIFIER,
    UPN,
    decode_permanent_identifier,
    decode_utf8_string,
)
from acmegate.testkit.apple_ca import (
    FOREIGN_KEY_TYPES,
    AttestationCA,
    ForeignKeyType,
    LeafClaims,
)
from acmegate.testkit.attobj import freshness_code
from acmegate.testkit.csr import SubjectAltNames, subject_from_profile
from acmegate.testkit.device import Attestation, DeviceMode, SimulatedDevice
from acmegate.testkit.jws import Algorithm, LeadingZeros, b64url_decode, key_authorization

FRESHNESS_OID = x509.ObjectIdentifier("1.2.840.113635.100.8.11.1")
SERIAL_OID = x509.ObjectIdentifier("1.2.840.113635.100.8.9.1")
UDID_OID = x509.ObjectIdentifier("1.2.840.113635.100.8.9.2")
SERIAL = "C02XK1ABJGH5"
TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"


@pytest.fixture(scope="module")
def ca() -> AttestationCA:
    return AttestationCA.generate()


def _device(
    ca: AttestationCA, mode: DeviceMode = DeviceMode.GENUINE, **kw: object
) -> SimulatedDevice:
    return SimulatedDevice(
        "http://127.0.0.1:1/acme/directory",
        SERIAL,
        LeafClaims.macos(SERIAL),
        ca,
        mode=mode,
        **kw,  # type: ignore[arg-type]
    )


def _ext(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> bytes | None:
    try:
        value = cert.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None
    assert isinstance(value, x509.UnrecognizedExtension)
    return value.value


def _spki(key: ec.EllipticCurvePublicKey | object) -> bytes:
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _decoded(attestation: Attestation) -> dict[str, object]:
    text = attestation.payload["attObj"]
    assert "=" not in text  # base64url without padding (docs/apple-attestation.md §3)
    raw = b64url_decode(text)
    assert raw == attestation.att_obj
    decoded = cbor2.loads(raw)
    assert isinstance(decoded, dict)
    return decoded


# -- keys and CSR --------------------------------------------------------------------------------


def test_device_key_is_p384_by_default_and_p256_on_request(ca: AttestationCA) -> None:
    assert isinstance(_device(ca).device_key.curve, ec.SECP384R1)
    assert isinstance(_device(ca, key_size=256).device_key.curve, ec.SECP256R1)


def test_account_key_is_es256_p256_like_apple(ca: AttestationCA) -> None:
    device = _device(ca)
    assert device.account.alg is Algorithm.ES256
    assert device.account.jwk["crv"] == "P-256"


def test_strip_leading_zeros_flag_selects_apple_behaviour(ca: AttestationCA) -> None:
    assert _device(ca).account.leading_zeros is LeadingZeros.KEEP
    assert _device(ca, strip_leading_zeros=True).account.leading_zeros is LeadingZeros.STRIP
    forced = _device(ca, strip_leading_zeros=LeadingZeros.FORCE_ANY)
    assert forced.account.leading_zeros is LeadingZeros.FORCE_ANY


def test_csr_carries_the_device_key_and_cn_client_identifier(ca: AttestationCA) -> None:
    device = _device(ca)
    csr = device.build_csr()
    assert csr.is_signature_valid
    assert _spki(csr.public_key()) == _spki(device.device_key.public_key())
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == SERIAL
    with pytest.raises(x509.ExtensionNotFound):
        csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)


def test_csr_carries_the_subject_and_sans_asked_for(ca: AttestationCA) -> None:
    device = _device(
        ca,
        subject=[("O", "Example Corp"), ("CN", "mac-42"), ("2.5.4.5", SERIAL)],
        subject_alt_name={
            "dNSName": "mac-42.example.com",
            "rfc822Name": "alice@example.com",
            "uniformResourceIdentifier": ["urn:device:42", "https://example.com/d/42"],
            "ntPrincipalName": "alice@EXAMPLE.COM",
            "permanentIdentifier": SERIAL,
        },
        usage_flags=0x01,
        extended_key_usage=["1.3.6.1.5.5.7.3.2"],
    )
    csr = device.build_csr()
    assert csr.subject.rfc4514_string() == f"2.5.4.5={SERIAL},CN=mac-42,O=Example Corp"
    sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["mac-42.example.com"]
    assert sans.get_values_for_type(x509.RFC822Name) == ["alice@example.com"]
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [
        "urn:device:42",
        "https://example.com/d/42",
    ]
    others = {o.type_id: o.value for o in sans.get_values_for_type(x509.OtherName)}
    assert decode_utf8_string(others[UPN]) == "alice@EXAMPLE.COM"
    assert decode_permanent_identifier(others[PERMANENT_IDENTIFIER]) == (SERIAL, None)
    ku = csr.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_encipherment
    eku = csr.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert [o.dotted_string for o in eku] == ["1.3.6.1.5.5.7.3.2"]


def test_subject_in_apple_profile_form() -> None:
    name = subject_from_profile(
        [[["C", "US"]], [["O", "Apple Inc."]], [["CN", "foo"]], [["1.2.5.3", "bar"]]]
    )
    assert name.rfc4514_string() == "1.2.5.3=bar,CN=foo,O=Apple Inc.,C=US"


def test_unknown_profile_san_key_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown SubjectAltName"):
        SubjectAltNames.from_profile({"ipAddress": "10.0.0.1"})


# -- the attestation -----------------------------------------------------------------------------


def test_genuine_attestation_has_apples_shape(ca: AttestationCA) -> None:
    device = _device(ca)
    attestation = device.attestation_for(TOKEN)
    decoded = _decoded(attestation)
    # Exactly {"fmt":"apple","attStmt":{"x5c":[leaf, intermediate]}}, fmt first
    # (docs/apple-attestation.md §3).
    assert list(decoded) == ["fmt", "attStmt"]
    assert decoded["fmt"] == "apple"
    assert attestation.att_obj is not None and attestation.att_obj[:1] == b"\xa2"
    statement = decoded["attStmt"]
    assert isinstance(statement, dict) and list(statement) == ["x5c"]
    leaf_der, intermediate_der = statement["x5c"]
    leaf = x509.load_der_x509_certificate(leaf_der)
    assert intermediate_der == ca.intermediate.public_bytes(serialization.Encoding.DER)
    leaf.verify_directly_issued_by(ca.intermediate)
    assert _spki(leaf.public_key()) == _spki(device.device_key.public_key())
    assert _ext(leaf, FRESHNESS_OID) == hashlib.sha256(TOKEN.encode()).digest()
    assert attestation.freshness == _ext(leaf, FRESHNESS_OID)
    assert _ext(leaf, SERIAL_OID) == SERIAL.encode()


def test_wrong_token_hash_mode_hashes_the_key_authorization(ca: AttestationCA) -> None:
    device = _device(ca, DeviceMode.WRONG_TOKEN_HASH)
    leaf = device.attestation_for(TOKEN).leaf
    assert leaf is not None
    assert _ext(leaf, FRESHNESS_OID) != freshness_code(TOKEN)
    assert _ext(leaf, FRESHNESS_OID) == freshness_code(key_authorization(TOKEN, device.account.jwk))


def test_stale_attestation_mode_uses_the_earlier_token(ca: AttestationCA) -> None:
    device = _device(ca, DeviceMode.STALE_ATTESTATION)
    attestation = device.attestation_for(TOKEN, stale_token="an-older-token-0123456789abcdef")
    assert attestation.leaf is not None
    assert _ext(attestation.leaf, FRESHNESS_OID) == freshness_code(
        "an-older-token-0123456789abcdef"
    )
    with pytest.raises(ValueError, match="stale_token"):
        device.attestation_for(TOKEN)


def test_missing_freshness_mode_omits_the_oid(ca: AttestationCA) -> None:
    leaf = _device(ca, DeviceMode.MISSING_FRESHNESS).attestation_for(TOKEN).leaf
    assert leaf is not None
    assert _ext(leaf, FRESHNESS_OID) is None
    assert _ext(leaf, SERIAL_OID) == SERIAL.encode()


def test_wrong_root_mode_uses_another_ca_with_the_same_names(ca: AttestationCA) -> None:
    other = AttestationCA.generate()
    attestation = _device(ca, DeviceMode.WRONG_ROOT, wrong_ca=other).attestation_for(TOKEN)
    assert attestation.leaf is not None
    assert attestation.chain[1] == other.intermediate
    attestation.leaf.verify_directly_issued_by(other.intermediate)
    assert attestation.leaf.issuer == ca.intermediate.subject  # looks the same, is not
    with pytest.raises(Exception):  # noqa: B017 - any verification failure will do
        attestation.leaf.verify_directly_issued_by(ca.intermediate)
    assert _ext(attestation.leaf, FRESHNESS_OID) == freshness_code(TOKEN)


def test_identifier_mismatch_mode_attests_another_serial_and_udid(ca: AttestationCA) -> None:
    device = _device(ca, DeviceMode.IDENTIFIER_MISMATCH)
    leaf = device.attestation_for(TOKEN).leaf
    assert leaf is not None
    assert _ext(leaf, SERIAL_OID) not in (None, SERIAL.encode())
    assert _ext(leaf, UDID_OID) not in (None, (device.claims.udid or "").encode())
    assert _ext(leaf, FRESHNESS_OID) == freshness_code(TOKEN)


def test_csr_key_mismatch_mode_attests_one_key_and_requests_another(ca: AttestationCA) -> None:
    device = _device(ca, DeviceMode.CSR_KEY_MISMATCH)
    leaf = device.attestation_for(TOKEN).leaf
    csr = device.build_csr()
    assert leaf is not None and csr.is_signature_valid
    assert _spki(leaf.public_key()) == _spki(device.device_key.public_key())
    assert _spki(csr.public_key()) != _spki(leaf.public_key())


@pytest.mark.parametrize("kind", FOREIGN_KEY_TYPES)
def test_foreign_key_type_mode_attests_a_key_no_secure_enclave_holds(
    ca: AttestationCA, kind: ForeignKeyType
) -> None:
    device = _device(ca, DeviceMode.FOREIGN_KEY_TYPE, foreign_key_type=kind)
    attestation = device.attestation_for(TOKEN)
    leaf = attestation.leaf
    assert leaf is not None and attestation.chain == (leaf, ca.intermediate)
    key = leaf.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        assert key.curve.name in ("secp224r1", "secp521r1")
    else:
        assert type(key).__name__.lower().startswith(kind.split("-")[0])
    leaf.verify_directly_issued_by(ca.intermediate)


def test_leaf_from_root_mode_skips_the_sub_ca(ca: AttestationCA) -> None:
    attestation = _device(ca, DeviceMode.LEAF_FROM_ROOT).attestation_for(TOKEN)
    leaf = attestation.leaf
    assert leaf is not None and attestation.chain == (leaf, ca.intermediate)
    assert leaf.issuer == ca.root.subject
    leaf.verify_directly_issued_by(ca.root)


def test_empty_att_stmt_mode(ca: AttestationCA) -> None:
    attestation = _device(ca, DeviceMode.EMPTY_ATT_STMT).attestation_for(TOKEN)
    assert _decoded(attestation) == {"fmt": "apple", "attStmt": {}}
    assert attestation.leaf is None


def test_error_payload_mode(ca: AttestationCA) -> None:
    attestation = _device(
        ca, DeviceMode.ERROR_PAYLOAD, error_message="no attestation"
    ).attestation_for(TOKEN)
    assert attestation.payload == {"error": "no attestation"}
    assert attestation.att_obj is None


def test_reuse_mode_resends_the_first_attestation(ca: AttestationCA) -> None:
    device = _device(ca, DeviceMode.REUSE_PREVIOUS_ATTESTATION)
    first = device.attestation_for(TOKEN)
    second = device.attestation_for("a-completely-different-token-xyz")
    assert second.payload == first.payload
    assert second.leaf is not None and _ext(second.leaf, FRESHNESS_OID) == freshness_code(TOKEN)


def test_genuine_mode_mints_a_fresh_attestation_per_token(ca: AttestationCA) -> None:
    device = _device(ca)
    assert device.attestation_for(TOKEN).payload != device.attestation_for(TOKEN + "x").payload


def test_user_enrollment_claims_omit_serial_and_udid(ca: AttestationCA) -> None:
    device = SimulatedDevice("http://x/d", SERIAL, LeafClaims.macos(SERIAL).user_enrollment(), ca)
    leaf = device.attestation_for(TOKEN).leaf
    assert leaf is not None
    assert _ext(leaf, SERIAL_OID) is None and _ext(leaf, UDID_OID) is None
