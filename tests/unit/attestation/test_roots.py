"""Trust roots: Apple's packaged root, configured test roots, and configuration problems."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import VerificationError

from acmegate.attestation import dev_providers, validate_config
from acmegate.attestation.roots import (
    TrustRootError,
    apple_root,
    is_apple_root,
    load_trust,
)
from acmegate.common.config import Config
from acmegate.common.config.model import AttestationProviderConfig
from acmegate.testkit.apple_ca import AttestationCA
from tests.unit.attestation.helpers import MINTED, NOW, mint, provider_trust

APPLE_FINGERPRINT = (
    "CC:F5:9E:F8:FC:B3:01:7D:97:F8:B5:FA:6F:A9:0E:7A:"
    "3F:92:83:F7:6B:55:AC:6C:F6:ED:A8:B8:B9:49:F0:5B"
)


def test_the_packaged_root_is_apples_enterprise_attestation_root() -> None:
    root = apple_root()
    fingerprint = root.fingerprint(hashes.SHA256()).hex(":").upper()
    assert fingerprint == APPLE_FINGERPRINT
    assert root.subject.rfc4514_string() == (
        "C=US,O=Apple Inc.,CN=Apple Enterprise Attestation Root CA"
    )
    assert is_apple_root(root)


def test_a_provider_without_roots_trusts_only_apple_and_is_not_dev() -> None:
    [trust] = load_trust([AttestationProviderConfig(name="apple")])
    assert [is_apple_root(root) for root in trust.roots] == [True]
    assert not trust.is_dev
    assert dev_providers(Config()) == []


def test_a_provider_with_a_test_root_is_dev(root_file: Path, ca: AttestationCA) -> None:
    config = Config(
        attestation_providers=[
            AttestationProviderConfig(name="apple"),
            AttestationProviderConfig(name="simulator", roots=[str(root_file)]),
        ]
    )
    trusts = load_trust(config.attestation_providers)
    assert trusts[1].roots == (ca.root,)
    assert dev_providers(config) == ["simulator"]


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def test_validate_config_names_each_unusable_root(
    tmp_path: Path, ca: AttestationCA, root_file: Path
) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(_pem(mint(ca, ec.generate_private_key(ec.SECP256R1()))))
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(_pem(ca.root) + _pem(ca.intermediate))
    config = Config(
        attestation_providers=[
            AttestationProviderConfig(name="ok", roots=[str(root_file), str(bundle)]),
            AttestationProviderConfig(
                name="bad", roots=[str(tmp_path / "missing.pem"), str(garbage), str(leaf)]
            ),
        ]
    )

    problems = validate_config(config, now=NOW)

    assert len(problems) == 3
    assert problems[0].startswith("$.attestation_providers[1].roots[0]: ")
    assert "cannot read: No such file or directory" in problems[0]
    assert problems[1].startswith("$.attestation_providers[1].roots[1]: ")
    assert "no readable certificate" in problems[1]
    assert problems[2].startswith("$.attestation_providers[1].roots[2]: ")
    assert "is not a CA: basicConstraints has CA:FALSE" in problems[2]


def test_validate_config_reports_an_expired_root(tmp_path: Path, ca: AttestationCA) -> None:
    path = tmp_path / "root.pem"
    path.write_bytes(_pem(ca.root))
    config = Config(attestation_providers=[AttestationProviderConfig(name="t", roots=[str(path)])])
    later = ca.root.not_valid_after_utc.replace(year=ca.root.not_valid_after_utc.year + 1)
    [problem] = validate_config(config, now=later)
    assert "is not valid now" in problem


def test_starting_with_an_unusable_root_fails_loudly(tmp_path: Path) -> None:
    provider = AttestationProviderConfig(name="broken", roots=[str(tmp_path / "nope.pem")])
    with pytest.raises(TrustRootError, match=r"attestation provider 'broken'.*cannot read"):
        load_trust([provider])


# --- the verified-intermediate shortcut ---------------------------------------------------------


def test_a_remembered_intermediate_still_checks_every_new_leaf(root_file: Path) -> None:
    ca = AttestationCA.generate(now=MINTED - timedelta(days=30))  # a trust of its own
    root = root_file.parent / "shortcut-root.pem"
    root.write_bytes(_pem(ca.root))
    trust = provider_trust(root)
    key = ec.generate_private_key(ec.SECP384R1())

    trust.verify_chain(mint(ca, key), [ca.intermediate], NOW)  # full path, remembered
    assert len(trust._verified) == 1
    trust.verify_chain(mint(ca, key), [ca.intermediate], NOW)  # shortcut

    rogue = AttestationCA.generate(now=MINTED)
    with pytest.raises(VerificationError, match="signature does not match"):
        trust.verify_chain(mint(ca, key, issuer=rogue), [ca.intermediate], NOW)

    # A leaf minted just before the intermediate expires is refused once it has expired.
    expiry = ca.intermediate.not_valid_after_utc
    late_leaf = mint(ca, key, now=expiry - timedelta(days=1))
    trust.verify_chain(late_leaf, [ca.intermediate], expiry - timedelta(hours=1))
    with pytest.raises(VerificationError, match="not valid at validation time"):
        trust.verify_chain(late_leaf, [ca.intermediate], expiry + timedelta(hours=1))
