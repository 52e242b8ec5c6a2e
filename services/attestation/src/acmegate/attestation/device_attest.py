"""The ``device-attest-01`` challenge: from the client's JWS payload to verified device claims.

draft-ietf-acme-device-attest §5: the payload is ``{"attObj": base64url(CBOR)}``, other fields are
ignored. The CBOR is a WebAuthn-shaped attestation object ``{fmt, attStmt}``
(docs/apple-attestation.md §3), and ``fmt`` picks the verifier from a small registry (only ``apple``
today). After the format's own checks, the device identifier in the statement must match the order's
identifier (draft §5 step 3; step-ca's rule, docs/apple-attestation.md §9).
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

import cbor2

from acmegate.attestation.errors import AttestedFailure, bad_attestation
from acmegate.common.config.model import AttestationProviderConfig
from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.common.json_input import JsonInputError, decode_json
from acmegate.common.messages import DeviceClaims, Identifier, Subproblem, VerifyChallenge
from acmegate.common.vocabulary import ChallengeType, IdentifierType

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
# An attestation object is a flat map of a map of an array; deeper nesting is not ours.
_MAX_CBOR_DEPTH = 8
_MAX_ERROR_ECHO = 200


class AttestationFormat(Protocol):
    """One attestation statement format (``fmt``), bound to the provider that trusts it."""

    format: str
    provider: AttestationProviderConfig

    def verify(self, att_stmt: Mapping[Any, Any], *, token: str, now: datetime) -> DeviceClaims:
        """The device claims of ``att_stmt``; ``AcmeError`` if the statement is unacceptable."""
        ...


def format_registry(formats: Iterable[AttestationFormat]) -> dict[str, AttestationFormat]:
    """``fmt`` → verifier; the first configured provider of a format wins."""
    registry: dict[str, AttestationFormat] = {}
    for verifier in formats:
        registry.setdefault(verifier.format, verifier)
    return registry


class DeviceAttestChallenge:
    """Validates ``device-attest-01`` responses with the formats it was given."""

    def __init__(self, formats: Mapping[str, AttestationFormat]) -> None:
        self._formats = dict(formats)

    def verify(self, request: VerifyChallenge, now: datetime) -> DeviceClaims:
        """The claims proving ``request``'s identifier, or ``AcmeError`` for the client."""
        if request.challenge_type != ChallengeType.DEVICE_ATTEST_01:
            raise AcmeError(
                ErrorKind.MALFORMED,
                f"challenge type {request.challenge_type!r} is not validated by this gateway",
            )
        att_obj = _attestation_object(request)
        fmt, att_stmt = _parse_attestation_object(att_obj)
        verifier = self._formats.get(fmt)
        if verifier is None:
            raise bad_attestation(f"unsupported attestation format {fmt!r}")
        claims = verifier.verify(att_stmt, token=request.token, now=now)
        _check_identifier(request, claims, verifier.provider)
        return claims

    def charged_to_device(self, request: VerifyChallenge, error: AcmeError) -> bool:
        """Whether ``error`` counts against the failed-validations limit of the device the
        order names: only when Apple's chain verified and attests that very device. Anything
        else (a forged or foreign statement) is charged to the account that sent it."""
        if not isinstance(error, AttestedFailure) or error.attested is None:
            return False
        if request.platform is not None:
            return False
        named = error.attested.provider
        provider = next(
            (f.provider for f in self._formats.values() if f.provider.name == named), None
        )
        if provider is None:
            return False
        attested = _attested_identifiers(error.attested, provider)
        return request.identifier.value in attested.values()


def _attestation_object(request: VerifyChallenge) -> bytes:
    try:
        payload = decode_json(request.payload)
    except JsonInputError as exc:
        raise bad_attestation(f"challenge response payload is not acceptable JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise bad_attestation("challenge response payload is not a JSON object")
    error = payload.get("error")
    if error:
        # iOS 16 beta clients reported a failed attestation this way; step-ca answers with
        # rejectedIdentifier "payload contained error: …" (docs/apple-attestation.md §3).
        text = str(error)[:_MAX_ERROR_ECHO]
        raise AcmeError(
            ErrorKind.REJECTED_IDENTIFIER,
            f"payload contained error: {text}",
            identifier=request.identifier,
        )
    encoded = payload.get("attObj")
    if encoded is None:
        raise bad_attestation("attObj not present in the challenge response payload")
    if not isinstance(encoded, str):
        raise bad_attestation("attObj is not a string")
    if not encoded:
        raise bad_attestation("attObj must not be empty")
    return _decode_base64url(encoded)


def _decode_base64url(encoded: str) -> bytes:
    # Strict RFC 4648 §5 without padding, as devices send it (step-ca: RawURLEncoding, §2.1):
    # only the URL alphabet, no "=", and a canonical encoding (the round trip reproduces it).
    if not _BASE64URL.fullmatch(encoded) or len(encoded) % 4 == 1:
        raise bad_attestation("attObj is not base64url without padding")
    raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != encoded:
        raise bad_attestation("attObj is not canonical base64url")
    return raw


def _parse_attestation_object(att_obj: bytes) -> tuple[str, Mapping[Any, Any]]:
    stream = io.BytesIO(att_obj)
    decoder = cbor2.CBORDecoder(stream, max_depth=_MAX_CBOR_DEPTH, allow_duplicate_keys=False)
    try:
        decoded = decoder.decode()
    except (cbor2.CBORDecodeError, ValueError, OverflowError) as exc:
        raise bad_attestation(f"attObj is not well-formed CBOR: {exc}") from exc
    if stream.tell() != len(att_obj):
        raise bad_attestation("attObj has data after the CBOR item")
    if not isinstance(decoded, dict):
        raise bad_attestation("attObj is not a CBOR map")
    fmt = decoded.get("fmt")
    if not isinstance(fmt, str):
        raise bad_attestation("attObj has no text fmt")
    att_stmt = decoded.get("attStmt")
    if not isinstance(att_stmt, dict):
        raise bad_attestation("attObj has no attStmt map")
    return fmt, att_stmt


def _check_identifier(
    request: VerifyChallenge, claims: DeviceClaims, provider: AttestationProviderConfig
) -> None:
    if request.platform is not None:
        # The identifier is an enrollment token the frontend already checked for this
        # platform; the device is then identified by its attested serial number.
        if not claims.serial_number:
            raise bad_attestation(
                "the attestation has no serial number, which enrollment-token orders require "
                "(User Enrollment devices are attested without one)"
            )
        return
    identifier = request.identifier
    attested = _attested_identifiers(claims, provider)
    if (
        identifier.type == IdentifierType.PERMANENT_IDENTIFIER
        and identifier.value in attested.values()
    ):
        return
    if attested:
        listed = " or ".join(f"{name} {value!r}" for name, value in attested.items())
        reason = f"identifier {identifier.value!r} is not the attested {listed}"
    else:
        reason = (
            f"identifier {identifier.value!r} cannot be matched: the attestation has no "
            f"{_wanted(provider)} (User Enrollment?)"
        )
    # step-ca's shape: badAttestationStatement with a rejectedIdentifier subproblem naming
    # the identifier (docs/apple-attestation.md §9).
    raise AcmeError(
        ErrorKind.BAD_ATTESTATION_STATEMENT,
        "permanent identifier does not match",
        subproblems=(
            Subproblem(
                kind=ErrorKind.REJECTED_IDENTIFIER,
                detail=reason,
                identifier=Identifier(type=identifier.type, value=identifier.value),
            ),
        ),
    )


def _attested_identifiers(
    claims: DeviceClaims, provider: AttestationProviderConfig
) -> dict[str, str]:
    attested: dict[str, str] = {}
    if provider.identifier_match in ("serial_or_udid", "serial") and claims.serial_number:
        attested["serial number"] = claims.serial_number
    if provider.identifier_match in ("serial_or_udid", "udid") and claims.udid:
        attested["UDID"] = claims.udid
    return attested


def _wanted(provider: AttestationProviderConfig) -> str:
    return {
        "serial_or_udid": "serial number or UDID",
        "serial": "serial number",
        "udid": "UDID",
    }[provider.identifier_match]
