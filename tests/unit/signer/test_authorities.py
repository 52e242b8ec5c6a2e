"""Loading the configured CAs: every unusable one is reported with its configuration key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from acmegate.common.clock import FixedClock
from acmegate.common.config import Config, Secret
from acmegate.common.config.model import CertificateAuthorityConfig, FileKey, Pkcs11Key
from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.signer.authorities import AuthorityError, load_authorities, validate_config
from acmegate.signer.chains import authority_key_identifier, pem
from tests.unit.signer.conftest import MakeCa
from tests.unit.signer.helpers import PASSPHRASE


def _with_ca(config: Config, **changes: object) -> Config:
    ca = msgspec.structs.replace(config.certificate_authorities[0], **changes)
    return msgspec.structs.replace(config, certificate_authorities=[ca])


def test_a_missing_certificate_file_is_reported_with_its_key(make_ca: MakeCa) -> None:
    _, config = make_ca()
    config = _with_ca(config, certificate="/nonexistent/issuing.pem")
    assert validate_config(config) == [
        "$.certificate_authorities[0].certificate: cannot read /nonexistent/issuing.pem: "
        "No such file or directory"
    ]


def test_a_chain_of_another_root_is_refused(make_ca: MakeCa) -> None:
    _, config = make_ca()
    other, _ = make_ca()
    config = _with_ca(config, chain=[str(other.chain[0])])
    [problem] = validate_config(config)
    assert problem.startswith("$.certificate_authorities[0].chain: ")
    assert "does not verify" in problem


def test_a_chain_in_the_wrong_order_is_refused(make_ca: MakeCa) -> None:
    files, config = make_ca()
    config = _with_ca(config, chain=[str(files.certificate)])
    [problem] = validate_config(config)
    assert problem.startswith("$.certificate_authorities[0].chain: chain certificate 1")
    assert "list the chain from the CA's issuer up" in problem


def test_a_key_of_another_ca_is_refused(make_ca: MakeCa) -> None:
    files, config = make_ca()
    other, _ = make_ca()
    config = _with_ca(
        config, key=FileKey(path=str(other.key), passphrase=Secret(env="ACMEGATE_CA_PASSPHRASE"))
    )
    [problem] = validate_config(config)
    assert problem == (
        "$.certificate_authorities[0].key: certificate authority 'issuing': the key "
        f"(file {other.key}) does not match the certificate {files.certificate} "
        "(CN=acmegate Test Issuing CA,O=acmegate tests,C=DE)"
    )


def test_a_clear_key_file_is_refused(make_ca: MakeCa, tmp_path: object) -> None:
    files, config = make_ca()
    key = serialization.load_pem_private_key(files.key.read_bytes(), PASSPHRASE.encode())
    clear = files.key.with_name("clear.key")
    clear.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    config = _with_ca(
        config, key=FileKey(path=str(clear), passphrase=Secret(env="ACMEGATE_CA_PASSPHRASE"))
    )
    [problem] = validate_config(config)
    assert "is not an encrypted PKCS#8 PEM key" in problem


def test_a_pkcs11_key_without_its_pin_is_a_clear_error(make_ca: MakeCa) -> None:
    _, config = make_ca()
    config = _with_ca(
        config,
        key=Pkcs11Key(
            module="/usr/lib/softhsm/libsofthsm2.so",
            token_label="acmegate",
            key_label="issuing",
            pin=Secret(env="ACMEGATE_TEST_UNSET_PIN"),
        ),
    )
    [problem] = validate_config(config)
    assert problem.startswith("$.certificate_authorities[0].key: certificate authority 'issuing'")
    assert "no PIN for token 'acmegate'" in problem
    assert "ACMEGATE_TEST_UNSET_PIN is not set" in problem


def test_a_pkcs11_module_that_cannot_be_loaded_is_a_clear_error(
    make_ca: MakeCa, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ACMEGATE_TEST_PIN", "1234")
    _, config = make_ca()
    config = _with_ca(
        config,
        key=Pkcs11Key(
            module=str(tmp_path / "missing.so"),
            token_label="acmegate",
            key_label="issuing",
            pin=Secret(env="ACMEGATE_TEST_PIN"),
        ),
    )
    [problem] = validate_config(config)
    assert "cannot load the PKCS#11 module" in problem and "missing.so" in problem


def test_an_expired_ca_is_refused_and_every_broken_ca_is_listed(make_ca: MakeCa) -> None:
    _, good = make_ca()
    _, second = make_ca(name="second")
    broken = msgspec.structs.replace(good.certificate_authorities[0], certificate="/missing.pem")
    config = msgspec.structs.replace(
        good, certificate_authorities=[broken, second.certificate_authorities[0]]
    )
    later = FixedClock(datetime.now(UTC) + timedelta(days=365 * 11))
    problems = validate_config(config, clock=later)
    assert [p.split(":")[0] for p in problems] == [
        "$.certificate_authorities[0].certificate",
        "$.certificate_authorities[1].certificate",
    ]
    assert "expired on" in problems[1]
    with pytest.raises(AuthorityError) as caught:
        load_authorities(config.certificate_authorities, clock=later)
    assert caught.value.problems == problems


def test_an_unknown_ca_name_is_a_server_internal_error(make_ca: MakeCa) -> None:
    _, config = make_ca()
    authorities = load_authorities(config.certificate_authorities)
    with pytest.raises(AcmeError) as caught:
        authorities.require("nope")
    assert caught.value.kind is ErrorKind.SERVER_INTERNAL
    assert "'nope'" in caught.value.detail


def test_the_issuer_chain_holds_every_ca_below_the_root(make_ca: MakeCa) -> None:
    """A three-level hierarchy: root → policy CA → issuing CA; the root is left out."""
    files, _ = make_ca()
    root = x509.load_pem_x509_certificate(files.chain[0].read_bytes())
    root_key = serialization.load_pem_private_key(
        files.root_key.read_bytes() if files.root_key else b"", PASSPHRASE.encode()
    )
    assert isinstance(root_key, ec.EllipticCurvePrivateKey)
    now = datetime.now(UTC)

    def ca(
        name: str,
        key: ec.EllipticCurvePrivateKey,
        issuer: x509.Certificate,
        issuer_key: ec.EllipticCurvePrivateKey,
    ) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(issuer.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(authority_key_identifier(issuer), critical=False)
            .sign(issuer_key, hashes.SHA256())
        )

    policy_key, issuing_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    policy = ca("Policy CA", policy_key, root, root_key)
    issuing = ca("Issuing CA 2", issuing_key, policy, policy_key)
    folder = files.certificate.parent
    (folder / "issuing2.pem").write_text(pem(issuing))
    (folder / "chain2.pem").write_text(pem(policy) + pem(root))  # one file, two certificates
    (folder / "issuing2.key").write_bytes(
        issuing_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(PASSPHRASE.encode()),
        )
    )
    entry = CertificateAuthorityConfig(
        name="issuing2",
        certificate=str(folder / "issuing2.pem"),
        chain=[str(folder / "chain2.pem")],
        key=FileKey(
            path=str(folder / "issuing2.key"), passphrase=Secret(env="ACMEGATE_CA_PASSPHRASE")
        ),
    )
    authority = load_authorities([entry])["issuing2"]
    assert authority.issuer_chain_pem == pem(issuing) + pem(policy)
    assert authority.chain == (policy, root)
