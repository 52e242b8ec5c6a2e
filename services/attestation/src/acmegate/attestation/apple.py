"""The ``apple`` attestation format: Apple Managed Device Attestation (docs/apple-attestation.md).

The statement is ``{"x5c": [leaf DER, intermediate DER]}`` and nothing else: no ``sig``, no
``authData`` (docs/apple-attestation.md §3). Apple's attestation servers vouch for the device by
issuing the leaf, so verifying means (draft-ietf-acme-device-attest §5 steps; step-ca's
``doAppleAttestationFormat``):

1. ``x5c`` is a non-empty list of DER certificates;
2. the leaf attests a Secure Enclave key (EC P-256 or P-384), and the chain leads to the
   provider's root at the time the challenge is answered through exactly one intermediate,
   as Apple's does (leaf → Enterprise Attestation Sub CA → root);
3. the freshness code (OID 1.2.840.113635.100.8.11.1) is present once and equals SHA-256(token) —
   REQUIRED here, unlike step-ca, which skips a missing one (docs/apple-attestation.md §7; nanoca,
   Fleet and ACME-Server-ADCS require it);
4. the device properties are read from the leaf, and its key becomes the attested key that the
   finalize CSR must carry (docs/apple-attestation.md §8).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.verification import VerificationError

from acmegate.attestation.errors import AttestedFailure, bad_attestation
from acmegate.attestation.roots import ChainShapeError, ProviderTrust
from acmegate.common.apple_oids import (
    NAMES,
    OID_FRESHNESS,
    OID_LLB_VERSION,
    OID_OS_VERSION,
    OID_SECURE_BOOT,
    OID_SEPOS_VERSION,
    OID_SERIAL_NUMBER,
    OID_SIP_STATUS,
    OID_SOFTWARE_UPDATE_DEVICE_ID,
    OID_THIRD_PARTY_KEXTS,
    OID_UDID,
)
from acmegate.common.errors import AcmeError
from acmegate.common.messages import DeviceClaims
from acmegate.common.x509names import spki_der

FORMAT = "apple"

# A real statement holds two certificates; a few more is harmless, hundreds is abuse.
_MAX_X5C = 8
# DER string types a lenient reader unwraps (Apple itself sends the bare characters,
# docs/apple-attestation.md §5).
_STRING_TAGS = frozenset({0x04, 0x0C, 0x13, 0x14, 0x16, 0x1A})
_INTEGER_TAG = 0x02
# The curves of Secure Enclave keys, and how people name curves in messages.
_SECURE_ENCLAVE = (ec.SECP256R1, ec.SECP384R1)
_CURVE_NAMES = {
    "secp224r1": "P-224",
    "secp256r1": "P-256",
    "secp384r1": "P-384",
    "secp521r1": "P-521",
}


@dataclass(frozen=True, slots=True)
class AppleLeaf:
    """What an Apple attestation leaf asserts, read without judging it (docs/apple-attestation.md
    §5, §6)."""

    attested_key: bytes
    not_after: datetime
    freshness: bytes | None = None
    serial_number: str | None = None
    udid: str | None = None
    os_version: str | None = None
    sepos_version: str | None = None
    llb_version: str | None = None
    software_update_device_id: str | None = None
    sip_status: int | None = None
    secure_boot: str | None = None
    third_party_kexts: int | None = None

    def claims(self, provider: str) -> DeviceClaims:
        """The bus form; SIP 0 means enabled, kexts 0 means none allowed (docs/apple-attestation.md
        §6)."""
        return DeviceClaims(
            provider=provider,
            format=FORMAT,
            attested_key=self.attested_key,
            serial_number=self.serial_number,
            udid=self.udid,
            os_version=self.os_version,
            sepos_version=self.sepos_version,
            llb_version=self.llb_version,
            software_update_device_id=self.software_update_device_id,
            sip_enabled=None if self.sip_status is None else self.sip_status == 0,
            secure_boot=self.secure_boot,
            third_party_kexts_allowed=(
                None if self.third_party_kexts is None else self.third_party_kexts != 0
            ),
            attestation_not_after=self.not_after,
        )


def read_leaf(leaf: x509.Certificate) -> AppleLeaf:
    """Read the device properties of ``leaf``; ``AcmeError`` if one is unreadable.

    Encodings are read leniently (raw ASCII or a DER string; DER INTEGER or raw digits) because
    only one real sample is public; Apple leaves a property blank when it could not verify it,
    so an empty value reads as absent (docs/apple-attestation.md §6).
    """
    try:
        extensions = leaf.extensions
    except x509.DuplicateExtension as exc:
        raise bad_attestation(
            f"attestation certificate repeats extension {exc.oid.dotted_string}"
        ) from exc
    except ValueError as exc:
        raise bad_attestation(f"attestation certificate has a malformed extension: {exc}") from exc
    raw: dict[x509.ObjectIdentifier, bytes] = {}
    for extension in extensions:
        if extension.oid in NAMES and isinstance(extension.value, x509.UnrecognizedExtension):
            raw[extension.oid] = extension.value.value
    try:
        attested_key = spki_der(leaf.public_key())
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise bad_attestation("attestation certificate has an unreadable public key") from exc
    return AppleLeaf(
        attested_key=attested_key,
        not_after=leaf.not_valid_after_utc,
        freshness=raw.get(OID_FRESHNESS),
        serial_number=_text(raw, OID_SERIAL_NUMBER),
        udid=_text(raw, OID_UDID),
        os_version=_text(raw, OID_OS_VERSION),
        sepos_version=_text(raw, OID_SEPOS_VERSION),
        llb_version=_text(raw, OID_LLB_VERSION),
        software_update_device_id=_text(raw, OID_SOFTWARE_UPDATE_DEVICE_ID),
        sip_status=_integer(raw, OID_SIP_STATUS),
        secure_boot=_text(raw, OID_SECURE_BOOT),
        third_party_kexts=_integer(raw, OID_THIRD_PARTY_KEXTS),
    )


class AppleFormat:
    """Verifies ``apple`` statements against one provider's roots."""

    format = FORMAT

    def __init__(self, trust: ProviderTrust) -> None:
        self.trust = trust
        self.provider = trust.provider

    def verify(self, att_stmt: Mapping[Any, Any], *, token: str, now: datetime) -> DeviceClaims:
        """The claims of a statement answering the challenge ``token`` at time ``now``."""
        leaf, intermediates = _certificates(att_stmt)
        # Checked first for a clear message; the chain verifier checks every certificate again.
        if now > leaf.not_valid_after_utc:
            raise bad_attestation(
                f"attestation certificate expired at {leaf.not_valid_after_utc.isoformat()}"
            )
        if now < leaf.not_valid_before_utc:
            raise bad_attestation(
                "attestation certificate is not valid before "
                f"{leaf.not_valid_before_utc.isoformat()}"
            )
        _check_attested_key_type(leaf)
        try:
            self.trust.verify_chain(leaf, intermediates, now)
        except ChainShapeError as exc:
            raise bad_attestation(f"x5c is not shaped as Apple's: {exc}") from exc
        # cryptography reports fields it cannot parse (e.g. a garbled subject) as ValueError.
        except (VerificationError, ValueError) as exc:
            raise bad_attestation(
                f"x5c does not chain to a trusted attestation root of provider "
                f"{self.provider.name!r}: {exc}"
            ) from exc
        properties = read_leaf(leaf)
        claims = properties.claims(self.provider.name)
        try:
            _check_freshness(properties.freshness, token)
        except AcmeError as exc:
            raise AttestedFailure.wrap(exc, claims) from exc
        return claims


def _key_description(key: PublicKeyTypes) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {_CURVE_NAMES.get(key.curve.name, key.curve.name)}"
    if isinstance(key, rsa.RSAPublicKey | dsa.DSAPublicKey):
        return f"{'RSA' if isinstance(key, rsa.RSAPublicKey) else 'DSA'}-{key.key_size}"
    return type(key).__name__.removeprefix("_").removesuffix("PublicKey")


def _check_attested_key_type(leaf: x509.Certificate) -> None:
    """The Secure Enclave holds EC keys on P-256 and P-384 only (the ACME payload's KeySize
    is 256 or 384, docs/apple-attestation.md §10–§11), so any other key is not Apple's."""
    try:
        key = leaf.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise bad_attestation("attestation certificate has an unreadable public key") from exc
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, _SECURE_ENCLAVE):
        return
    raise bad_attestation(
        f"the attested key is {_key_description(key)}; Apple attests Secure Enclave keys "
        "only: EC P-256 or P-384"
    )


def _certificates(
    att_stmt: Mapping[Any, Any],
) -> tuple[x509.Certificate, list[x509.Certificate]]:
    if "x5c" not in att_stmt:
        raise bad_attestation("x5c not present in the attestation statement")
    x5c = att_stmt["x5c"]
    if not isinstance(x5c, list):
        raise bad_attestation("x5c is malformed: not an array")
    if not x5c:
        raise bad_attestation("x5c is empty")
    if len(x5c) > _MAX_X5C:
        raise bad_attestation(f"x5c holds {len(x5c)} certificates, at most {_MAX_X5C} allowed")
    certs: list[x509.Certificate] = []
    for index, item in enumerate(x5c):
        if not isinstance(item, bytes):
            raise bad_attestation(f"x5c[{index}] is malformed: not a byte string")
        try:
            certs.append(x509.load_der_x509_certificate(item))
        except (ValueError, x509.InvalidVersion) as exc:
            raise bad_attestation(f"x5c[{index}] is malformed: not a DER certificate") from exc
    return certs[0], certs[1:]


def _check_freshness(freshness: bytes | None, token: str) -> None:
    if freshness is None:
        raise bad_attestation(
            f"attestation certificate has no freshness code (OID {OID_FRESHNESS.dotted_string})"
        )
    if len(freshness) != 32:
        raise bad_attestation(f"freshness code is {len(freshness)} bytes, expected 32")
    # Apple's freshness code is SHA-256 of the token string as sent (docs/apple-attestation.md §7),
    # not of the key authorization: the "token alone" case of draft-ietf-acme-device-attest §5.
    expected = hashlib.sha256(token.encode("utf-8")).digest()
    if not hmac.compare_digest(freshness, expected):
        raise bad_attestation(
            "freshness code does not match the challenge token "
            "(the attestation was made for another challenge)"
        )


def _der_body(raw: bytes, tags: frozenset[int]) -> bytes | None:
    """The contents of ``raw`` if it is exactly one DER TLV with one of ``tags``."""
    if len(raw) < 2 or raw[0] not in tags:
        return None
    length = raw[1]
    header = 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 2 or len(raw) < 2 + count:
            return None
        length = int.from_bytes(raw[2 : 2 + count], "big")
        header += count
    if header + length != len(raw):
        return None
    return raw[header:]


def _text(raw: Mapping[x509.ObjectIdentifier, bytes], oid: x509.ObjectIdentifier) -> str | None:
    value = raw.get(oid)
    if value is None:
        return None
    body = _der_body(value, _STRING_TAGS)
    try:
        text = (body if body is not None else value).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad_attestation(
            f"attestation {NAMES[oid]} ({oid.dotted_string}) is not UTF-8 text"
        ) from exc
    return text or None


def _integer(raw: Mapping[x509.ObjectIdentifier, bytes], oid: x509.ObjectIdentifier) -> int | None:
    value = raw.get(oid)
    if not value:
        return None
    body = _der_body(value, frozenset({_INTEGER_TAG}))
    if body:
        return int.from_bytes(body, "big", signed=True)
    if value.isdigit():
        return int(value)
    if len(value) <= 8:
        return int.from_bytes(value, "big")
    raise bad_attestation(f"attestation {NAMES[oid]} ({oid.dotted_string}) is not an integer")
