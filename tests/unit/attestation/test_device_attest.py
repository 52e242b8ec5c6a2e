"""device-attest-01 with the `apple` format: what verifies, and how each bad response fails."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from acmegate.attestation.device_attest import DeviceAttestChallenge
from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.common.messages import Identifier, VerifyChallenge
from acmegate.common.x509names import spki_der
from acmegate.testkit.apple_ca import (
    FOREIGN_KEY_TYPES,
    AttestationCA,
    ForeignKeyType,
    LeafClaims,
    foreign_public_key,
)
from acmegate.testkit.attobj import attestation_object, challenge_payload, freshness_code
from tests.unit.attestation.helpers import (
    MINTED,
    NOW,
    SERIAL,
    TOKEN,
    UDID,
    attested_request,
    challenge_verifier,
    expect_problem,
    mint,
    payload_of,
    provider_trust,
    request,
)

BAD = ErrorKind.BAD_ATTESTATION_STATEMENT


def _chain_payload(ca: AttestationCA, leaf: x509.Certificate) -> bytes:
    return payload_of(attestation_object(ca.chain_for(leaf)))


# --- what verifies --------------------------------------------------------------------------


def test_a_genuine_attestation_yields_the_device_claims_and_the_attested_key(
    verifier: DeviceAttestChallenge, ca: AttestationCA, device_key: ec.EllipticCurvePrivateKey
) -> None:
    claims = verifier.verify(attested_request(ca, device_key), NOW)

    assert claims.provider == "test"
    assert claims.format == "apple"
    assert claims.attested_key == spki_der(device_key.public_key())
    assert (claims.serial_number, claims.udid) == (SERIAL, UDID)
    assert (claims.os_version, claims.sepos_version, claims.llb_version) == ("17.4",) * 3
    assert claims.software_update_device_id == "J514sAP"
    assert claims.sip_enabled is True
    assert claims.secure_boot == "Full Security"
    assert claims.third_party_kexts_allowed is False
    assert claims.attestation_not_after == MINTED.replace(microsecond=0) + timedelta(days=90)


def test_the_order_identifier_may_be_the_attested_udid(
    verifier: DeviceAttestChallenge, ca: AttestationCA, device_key: ec.EllipticCurvePrivateKey
) -> None:
    claims = verifier.verify(attested_request(ca, device_key, identifier=UDID), NOW)
    assert claims.udid == UDID


def test_an_iphone_attestation_has_no_mac_security_claims(
    verifier: DeviceAttestChallenge, ca: AttestationCA, device_key: ec.EllipticCurvePrivateKey
) -> None:
    claims = verifier.verify(
        attested_request(ca, device_key, LeafClaims.ios("F2LXYZ123"), identifier="F2LXYZ123"), NOW
    )
    assert claims.serial_number == "F2LXYZ123"
    assert claims.sip_enabled is None
    assert claims.secure_boot is None
    assert claims.third_party_kexts_allowed is None


def test_unknown_payload_fields_are_ignored(
    verifier: DeviceAttestChallenge, ca: AttestationCA, device_key: ec.EllipticCurvePrivateKey
) -> None:
    body = challenge_payload(attestation_object(ca.chain_for(mint(ca, device_key))))
    claims = verifier.verify(request({**body, "note": "draft §5: ignore me"}), NOW)
    assert claims.serial_number == SERIAL


def test_with_an_enrollment_token_the_identifier_is_not_compared_but_a_serial_is_required(
    verifier: DeviceAttestChallenge, ca: AttestationCA, device_key: ec.EllipticCurvePrivateKey
) -> None:
    token_request = attested_request(ca, device_key, identifier="enroll-tok-1", platform="jamf")
    assert verifier.verify(token_request, NOW).serial_number == SERIAL

    user_enrollment = attested_request(
        ca, device_key, LeafClaims().user_enrollment(), identifier="enroll-tok-1", platform="jamf"
    )
    expect_problem(
        BAD, lambda: verifier.verify(user_enrollment, NOW), detail="has no serial number"
    )


# --- freshness ------------------------------------------------------------------------------


def test_an_attestation_made_for_another_token_fails_the_freshness_check(
    verifier: DeviceAttestChallenge, ca: AttestationCA, device_key: ec.EllipticCurvePrivateKey
) -> None:
    stale = _chain_payload(ca, mint(ca, device_key, token="the-previous-challenge-token"))
    expect_problem(
        BAD,
        lambda: verifier.verify(request(stale), NOW),
        detail="freshness code does not match the challenge token",
    )


def test_an_attestation_without_freshness_code_is_refused(
    verifier: DeviceAttestChallenge, ca: AttestationCA, device_key: ec.EllipticCurvePrivateKey
) -> None:
    unfresh = _chain_payload(ca, mint(ca, device_key, freshness=None))
    expect_problem(
        BAD,
        lambda: verifier.verify(request(unfresh), NOW),
        detail="no freshness code (OID 1.2.840.113635.100.8.11.1)",
    )


def test_a_freshness_code_of_the_wrong_length_is_refused(
    verifier: DeviceAttestChallenge, ca: AttestationCA, device_key: ec.EllipticCurvePrivateKey
) -> None:
    short = _chain_payload(ca, mint(ca, device_key, freshness=b"\x01" * 31))
    expect_problem(
        BAD, lambda: verifier.verify(request(short), NOW), detail="31 bytes, expected 32"
    )


def test_a_repeated_freshness_extension_is_refused(
    verifier: DeviceAttestChallenge, ca: AttestationCA, device_key: ec.EllipticCurvePrivateKey
) -> None:
    # Turn the UDID extension into a second freshness code (same OID length), then re-sign.
    leaf = mint(ca, device_key, LeafClaims(udid="x" * 32))
    udid_oid = b"\x06\x0a" + _oid_body("1.2.840.113635.100.8.9.2")
    fresh_oid = b"\x06\x0a" + _oid_body("1.2.840.113635.100.8.11.1")
    tbs = leaf.tbs_certificate_bytes.replace(udid_oid, fresh_oid)
    forged = _resign(leaf, tbs, ca.intermediate_key)
    payload = payload_of(attestation_object([forged, ca.intermediate]))
    expect_problem(
        BAD,
        lambda: verifier.verify(request(payload), NOW),
        detail="1.2.840.113635.100.8.11.1: duplicate extension",
    )


# --- chain ----------------------------------------------------------------------------------


def test_a_leaf_from_another_root_does_not_chain(
    verifier: DeviceAttestChallenge, device_key: ec.EllipticCurvePrivateKey
) -> None:
    rogue = AttestationCA.generate(now=MINTED - timedelta(days=1))
    payload = _chain_payload(rogue, mint(rogue, device_key))
    expect_problem(
        BAD,
        lambda: verifier.verify(request(payload), NOW),
        detail="x5c does not chain to a trusted attestation root of provider 'test'",
    )


def test_a_leaf_signed_by_another_ca_with_our_intermediate_alongside_does_not_chain(
    verifier: DeviceAttestChallenge, ca: AttestationCA, device_key: ec.EllipticCurvePrivateKey
) -> None:
    rogue = AttestationCA.generate(now=MINTED - timedelta(days=1))
    payload = _chain_payload(ca, mint(ca, device_key, issuer=rogue))
    expect_problem(BAD, lambda: verifier.verify(request(payload), NOW), detail="x5c does not chain")


@pytest.mark.parametrize("kind", FOREIGN_KEY_TYPES)
def test_a_leaf_attesting_a_key_no_secure_enclave_holds_is_refused(
    verifier: DeviceAttestChallenge, ca: AttestationCA, kind: ForeignKeyType
) -> None:
    leaf = ca.mint_leaf(
        foreign_public_key(kind), LeafClaims(), freshness=freshness_code(TOKEN), now=MINTED
    )
    expect_problem(
        BAD,
        lambda: verifier.verify(request(_chain_payload(ca, leaf)), NOW),
        detail="Apple attests Secure Enclave keys only: EC P-256 or P-384",
    )


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1()], ids=["p-256", "p-384"])
def test_secure_enclave_key_types_are_accepted(
    verifier: DeviceAttestChallenge, ca: AttestationCA, curve: ec.EllipticCurve
) -> None:
    key = ec.generate_private_key(curve)
    claims = verifier.verify(attested_request(ca, key), NOW)
    assert claims.attested_key == spki_der(key.public_key())


@pytest.mark.parametrize("with_intermediate", [True, False], ids=["x5c-2", "x5c-1"])
def test_a_leaf_signed_directly_by_the_root_is_refused(
    verifier: DeviceAttestChallenge,
    ca: AttestationCA,
    device_key: ec.EllipticCurvePrivateKey,
    with_intermediate: bool,
) -> None:
    leaf = mint(ca, device_key, signed_by_root=True)
    chain = ca.chain_for(leaf) if with_intermediate else [leaf]
    expect_problem(
        BAD,
        lambda: verifier.verify(request(payload_of(attestation_object(chain))), NOW),
        detail="the attestation certificate is issued by the root itself",
    )


def _sub_ca(
    name: str, issuer: x509.Certificate, issuer_key: ec.EllipticCurvePrivateKey
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP384R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)]))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(MINTED - timedelta(days=1))
        .not_valid_after(MINTED + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA384())
    )
    return certificate, key


def test_a_leaf_below_two_intermediates_is_refused(
    verifier: DeviceAttestChallenge, ca: AttestationCA, device_key: ec.EllipticCurvePrivateKey
) -> None:
    """Apple's chain has exactly one intermediate; a longer one is not Apple's."""
    first, first_key = _sub_ca("Sub CA A", ca.root, ca.root_key)
    second, second_key = _sub_ca("Sub CA B", first, first_key)
    below = AttestationCA(ca.root, ca.root_key, second, second_key)
    chain = [mint(below, device_key), second, first]
    expect_problem(
        BAD,
        lambda: verifier.verify(request(payload_of(attestation_object(chain))), NOW),
        detail="through 2 intermediate CAs",
    )


def test_an_expired_attestation_is_refused(
    verifier: DeviceAttestChallenge, ca: AttestationCA, device_key: ec.EllipticCurvePrivateKey
) -> None:
    later = NOW + timedelta(days=91)
    expect_problem(
        BAD,
        lambda: verifier.verify(attested_request(ca, device_key), later),
        detail="attestation certificate expired at 2026-05-31T09:59:00+00:00",
    )


def test_an_attestation_from_the_future_is_refused(
    verifier: DeviceAttestChallenge, ca: AttestationCA, device_key: ec.EllipticCurvePrivateKey
) -> None:
    future = _chain_payload(ca, mint(ca, device_key, now=NOW + timedelta(days=2)))
    expect_problem(BAD, lambda: verifier.verify(request(future), NOW), detail="is not valid before")


def test_apples_real_root_does_not_trust_a_test_ca(
    ca: AttestationCA, device_key: ec.EllipticCurvePrivateKey
) -> None:
    from acmegate.attestation.apple import AppleFormat
    from acmegate.attestation.device_attest import format_registry
    from acmegate.attestation.roots import apple_root, load_provider_trust
    from acmegate.common.config.model import AttestationProviderConfig

    trust = load_provider_trust(AttestationProviderConfig(name="apple"), apple_root())
    production = DeviceAttestChallenge(format_registry([AppleFormat(trust)]))
    expect_problem(
        BAD,
        lambda: production.verify(attested_request(ca, device_key), NOW),
        detail="x5c does not chain to a trusted attestation root of provider 'apple'",
    )


# --- identifier -----------------------------------------------------------------------------


def test_an_identifier_that_is_not_the_attested_serial_or_udid_is_rejected(
    verifier: DeviceAttestChallenge, ca: AttestationCA, device_key: ec.EllipticCurvePrivateKey
) -> None:
    problem = expect_problem(
        BAD,
        lambda: verifier.verify(attested_request(ca, device_key, identifier="C02OTHER"), NOW),
        detail="permanent identifier does not match",
    )
    [sub] = problem.subproblems
    assert sub.kind == "rejectedIdentifier"
    assert sub.identifier == Identifier(type="permanent-identifier", value="C02OTHER")
    assert f"serial number '{SERIAL}'" in sub.detail and f"UDID '{UDID}'" in sub.detail


def test_identifier_match_serial_refuses_the_udid(
    root_file: Path, ca: AttestationCA, device_key: ec.EllipticCurvePrivateKey
) -> None:
    strict = challenge_verifier(provider_trust(root_file, identifier_match="serial"))
    problem = expect_problem(
        BAD,
        lambda: strict.verify(attested_request(ca, device_key, identifier=UDID), NOW),
        detail="permanent identifier does not match",
    )
    assert "UDID" not in problem.subproblems[0].detail


def test_a_user_enrollment_attestation_cannot_prove_a_serial_identifier(
    verifier: DeviceAttestChallenge, ca: AttestationCA, device_key: ec.EllipticCurvePrivateKey
) -> None:
    problem = expect_problem(
        BAD,
        lambda: verifier.verify(
            attested_request(ca, device_key, LeafClaims().user_enrollment()), NOW
        ),
        detail="permanent identifier does not match",
    )
    assert "User Enrollment" in problem.subproblems[0].detail


# --- envelope -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("att_stmt", "detail"),
    [
        ({}, "x5c not present"),
        ({"alg": -7, "sig": b"\x00"}, "x5c not present"),
        ({"x5c": b"\x30\x00"}, "x5c is malformed: not an array"),
        ({"x5c": []}, "x5c is empty"),
        ({"x5c": ["MIIB..."]}, "x5c[0] is malformed: not a byte string"),
        ({"x5c": [b"\x30\x03\x02\x01\x00"]}, "x5c[0] is malformed: not a DER certificate"),
        ({"x5c": [b"garbage"] * 9}, "at most 8"),
    ],
    ids=["empty", "no-x5c", "x5c-not-array", "x5c-empty", "x5c-text", "garbage-der", "too-many"],
)
def test_a_statement_without_usable_x5c_is_refused(
    verifier: DeviceAttestChallenge, att_stmt: dict[str, object], detail: str
) -> None:
    payload = payload_of(attestation_object([], att_stmt=att_stmt))
    expect_problem(BAD, lambda: verifier.verify(request(payload), NOW), detail=detail)


def test_a_garbage_intermediate_is_refused(
    verifier: DeviceAttestChallenge, ca: AttestationCA, device_key: ec.EllipticCurvePrivateKey
) -> None:
    payload = payload_of(attestation_object([mint(ca, device_key), b"\x00" * 10]))
    expect_problem(
        BAD, lambda: verifier.verify(request(payload), NOW), detail="x5c[1] is malformed"
    )


@pytest.mark.parametrize(
    ("att_obj", "detail"),
    [
        (b"\xff\xfe\xfd", "attObj is not well-formed CBOR"),
        (b"\xa2\x63fmt", "attObj is not well-formed CBOR"),
        (cbor2.dumps({"fmt": "apple", "attStmt": {}}) + b"\x00", "data after the CBOR item"),
        (cbor2.dumps(["apple", {}]), "attObj is not a CBOR map"),
        (cbor2.dumps({"attStmt": {}}), "attObj has no text fmt"),
        (cbor2.dumps({"fmt": "apple", "attStmt": [1]}), "attObj has no attStmt map"),
        (b"\xa2\x63fmt\x65apple\x63fmt\x64tpm!", "attObj is not well-formed CBOR"),
    ],
    ids=["not-cbor", "truncated", "trailing", "array", "no-fmt", "stmt-array", "dup-key"],
)
def test_a_malformed_attestation_object_is_refused(
    verifier: DeviceAttestChallenge, att_obj: bytes, detail: str
) -> None:
    expect_problem(BAD, lambda: verifier.verify(request(payload_of(att_obj)), NOW), detail=detail)


def test_an_unknown_format_is_unsupported(
    verifier: DeviceAttestChallenge, ca: AttestationCA, device_key: ec.EllipticCurvePrivateKey
) -> None:
    payload = payload_of(attestation_object(ca.chain_for(mint(ca, device_key)), fmt="tpm"))
    expect_problem(
        BAD,
        lambda: verifier.verify(request(payload), NOW),
        detail="unsupported attestation format 'tpm'",
    )


def test_padded_base64_is_refused(
    verifier: DeviceAttestChallenge, ca: AttestationCA, device_key: ec.EllipticCurvePrivateKey
) -> None:
    chain = ca.chain_for(mint(ca, device_key))
    # Pick a statement length whose base64 needs padding.
    for pad in range(3):
        att_obj = attestation_object(chain, att_stmt={"x5c": chain, "p": b"x" * pad})
        padded = base64.urlsafe_b64encode(att_obj).decode()
        if padded.endswith("="):
            break
    expect_problem(
        BAD,
        lambda: verifier.verify(request({"attObj": padded}), NOW),
        detail="attObj is not base64url without padding",
    )


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        (b"not json", "payload is not acceptable JSON: not JSON"),
        (b"[1, 2]", "payload is not a JSON object"),
        ({}, "attObj not present"),
        ({"attObj": 42}, "attObj is not a string"),
        ({"attObj": ""}, "attObj must not be empty"),
        ({"attObj": "ab+/"}, "not base64url without padding"),
        ({"attObj": "abcde"}, "not base64url without padding"),
        ({"attObj": "ab c"}, "not base64url without padding"),
        ({"attObj": "YR"}, "attObj is not canonical base64url"),
    ],
    ids=[
        "not-json",
        "array",
        "no-attobj",
        "number",
        "empty",
        "std-alphabet",
        "bad-length",
        "space",
        "non-canonical",
    ],
)
def test_a_malformed_payload_is_refused(
    verifier: DeviceAttestChallenge, payload: bytes | dict[str, object], detail: str
) -> None:
    expect_problem(BAD, lambda: verifier.verify(request(payload), NOW), detail=detail)


def test_an_error_payload_rejects_the_identifier_like_step_ca(
    verifier: DeviceAttestChallenge,
) -> None:
    problem = expect_problem(
        ErrorKind.REJECTED_IDENTIFIER,
        lambda: verifier.verify(request({"error": "attestation unavailable"}), NOW),
        detail="payload contained error: attestation unavailable",
    )
    assert problem.identifier == Identifier(type="permanent-identifier", value=SERIAL)


def test_a_challenge_of_another_type_is_not_validated_here(
    verifier: DeviceAttestChallenge, ca: AttestationCA, device_key: ec.EllipticCurvePrivateKey
) -> None:
    import msgspec

    http = msgspec.structs.replace(attested_request(ca, device_key), challenge_type="http-01")
    expect_problem(
        ErrorKind.MALFORMED, lambda: verifier.verify(http, NOW), detail="'http-01' is not"
    )


def test_the_payload_as_a_device_sends_it_is_json_with_unpadded_base64url(
    ca: AttestationCA, device_key: ec.EllipticCurvePrivateKey
) -> None:
    body = json.loads(attested_request(ca, device_key).payload)
    assert set(body) == {"attObj"}
    assert "=" not in body["attObj"] and "+" not in body["attObj"] and "/" not in body["attObj"]
    assert TOKEN  # the token the freshness code was made from


# --- DER helpers for the forged certificate ---------------------------------------------------


def _oid_body(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return bytes(body)


def _tlv(tag: int, body: bytes) -> bytes:
    if len(body) < 0x80:
        return bytes([tag, len(body)]) + body
    size = len(body).to_bytes((len(body).bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def _resign(
    cert: x509.Certificate, tbs: bytes, key: ec.EllipticCurvePrivateKey
) -> x509.Certificate:
    """``cert`` with its TBS replaced by ``tbs`` and signed again by ``key``."""
    der = cert.public_bytes(serialization.Encoding.DER)
    content = der[4:]  # a leaf is longer than 255 bytes: 30 82 xx xx
    assert content.startswith(cert.tbs_certificate_bytes)
    rest = content[len(cert.tbs_certificate_bytes) :]
    algorithm = rest[: 2 + rest[1]]
    signature = key.sign(tbs, ec.ECDSA(hashes.SHA384()))
    return x509.load_der_x509_certificate(
        _tlv(0x30, tbs + algorithm + _tlv(0x03, b"\x00" + signature))
    )


# --- who a failure is charged to (the failed-validations limit) -----------------------------


def _failure(verifier: DeviceAttestChallenge, challenge: VerifyChallenge) -> AcmeError:
    with pytest.raises(AcmeError) as caught:
        verifier.verify(challenge, NOW)
    return caught.value


def test_a_stale_statement_from_a_genuine_chain_of_the_named_device_is_charged_to_it(
    verifier: DeviceAttestChallenge, ca: AttestationCA, device_key: ec.EllipticCurvePrivateKey
) -> None:
    stale = mint(ca, device_key, token="an-earlier-token")
    challenge = request(_chain_payload(ca, stale))
    assert verifier.charged_to_device(challenge, _failure(verifier, challenge))


def test_a_forged_or_foreign_statement_is_never_charged_to_the_named_device(
    verifier: DeviceAttestChallenge, ca: AttestationCA, device_key: ec.EllipticCurvePrivateKey
) -> None:
    rogue = AttestationCA.generate(now=MINTED - timedelta(days=1))
    forged = request(_chain_payload(rogue, mint(rogue, device_key)))
    assert not verifier.charged_to_device(forged, _failure(verifier, forged))
    # Apple vouches for the leaf, but for another device than the order names.
    stale_other = request(
        _chain_payload(ca, mint(ca, device_key, token="an-earlier-token")),
        identifier="C02OTHER",
    )
    assert not verifier.charged_to_device(stale_other, _failure(verifier, stale_other))
    mismatch = attested_request(ca, device_key, identifier="C02OTHER")
    assert not verifier.charged_to_device(mismatch, _failure(verifier, mismatch))
