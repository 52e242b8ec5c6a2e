"""A test Apple attestation CA, a device key and a verifier that trusts the CA."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from acmegate.attestation.device_attest import DeviceAttestChallenge
from acmegate.attestation.roots import ProviderTrust
from acmegate.testkit.apple_ca import AttestationCA
from tests.unit.attestation.helpers import challenge_verifier, provider_trust


@pytest.fixture(scope="session")
def ca() -> AttestationCA:
    return AttestationCA.generate(now=datetime(2026, 1, 1, tzinfo=UTC))


@pytest.fixture(scope="session")
def device_key() -> ec.EllipticCurvePrivateKey:
    """The Secure Enclave key of the simulated device (P-384, as with KeySize 384)."""
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture(scope="session")
def root_file(ca: AttestationCA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("roots") / "test-root.pem"
    path.write_bytes(ca.root.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.fixture(scope="session")
def trust(root_file: Path) -> ProviderTrust:
    return provider_trust(root_file)


@pytest.fixture(scope="session")
def verifier(trust: ProviderTrust) -> DeviceAttestChallenge:
    return challenge_verifier(trust)
