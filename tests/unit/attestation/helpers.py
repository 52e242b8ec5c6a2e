"""Building blocks for the attestation tests: constants, requests and a problem matcher."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from acmegate.attestation.apple import AppleFormat
from acmegate.attestation.device_attest import DeviceAttestChallenge, format_registry
from acmegate.attestation.roots import ProviderTrust, apple_root, load_provider_trust
from acmegate.common.config.model import AttestationProviderConfig
from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.common.messages import Identifier, VerifyChallenge
from acmegate.testkit.apple_ca import AttestationCA, LeafClaims
from acmegate.testkit.attobj import attestation_object, challenge_payload, freshness_code

# Everything is minted at MINTED and verified a minute later, at NOW.
MINTED = datetime(2026, 3, 2, 9, 59, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)
TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
SERIAL = "C02TESTSERIAL"
UDID = "00006030-000651690A84001C"
REAL_LEAF = Path(__file__).resolve().parents[2] / "data" / "apple-mda-leaf-macos-15.5.pem"


def provider_trust(
    root_file: Path,
    *,
    identifier_match: Literal["serial_or_udid", "serial", "udid"] = "serial_or_udid",
) -> ProviderTrust:
    provider = AttestationProviderConfig(
        name="test", roots=[str(root_file)], identifier_match=identifier_match
    )
    return load_provider_trust(provider, apple_root())


def challenge_verifier(trust: ProviderTrust) -> DeviceAttestChallenge:
    return DeviceAttestChallenge(format_registry([AppleFormat(trust)]))


def mint(
    ca: AttestationCA,
    key: ec.EllipticCurvePrivateKey,
    claims: LeafClaims | None = None,
    *,
    token: str = TOKEN,
    **options: Any,
) -> x509.Certificate:
    """A leaf for ``key`` with the freshness code of ``token`` (options go to mint_leaf)."""
    options.setdefault("freshness", freshness_code(token))
    options.setdefault("now", MINTED)
    return ca.mint_leaf(key.public_key(), claims or LeafClaims(), **options)


def payload_of(att_obj: bytes) -> bytes:
    """The JWS payload bytes the device POSTs to the challenge URL."""
    return json.dumps(challenge_payload(att_obj)).encode()


def request(
    payload: bytes | dict[str, Any],
    *,
    identifier: str = SERIAL,
    token: str = TOKEN,
    platform: str | None = None,
) -> VerifyChallenge:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return VerifyChallenge(
        correlation_id="corr-1",
        challenge_id="chall-1",
        authz_id="authz-1",
        order_id="order-1",
        account_id="acct-1",
        challenge_type="device-attest-01",
        identifier=Identifier(type="permanent-identifier", value=identifier),
        token=token,
        payload=body,
        platform=platform,
    )


def attested_request(
    ca: AttestationCA,
    key: ec.EllipticCurvePrivateKey,
    claims: LeafClaims | None = None,
    **kwargs: Any,
) -> VerifyChallenge:
    """A well-formed challenge response from a device of ``ca``."""
    leaf = mint(ca, key, claims)
    return request(payload_of(attestation_object(ca.chain_for(leaf))), **kwargs)


def expect_problem(kind: ErrorKind, call: Callable[[], object], *, detail: str) -> AcmeError:
    """Run ``call``; it must fail with ``kind`` and a detail containing ``detail``."""
    with pytest.raises(AcmeError) as caught:
        call()
    assert caught.value.kind is kind, caught.value
    assert detail in caught.value.detail, caught.value.detail
    return caught.value
