"""``acmegate ca init`` / ``ca import``: the CAs they write are valid, encrypted and usable."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from acmegate.common.clock import FixedClock
from acmegate.common.config import parse_config
from acmegate.common.config.model import FileKey
from acmegate.common.config.secrets import Secret
from acmegate.signer.authorities import load_authorities, validate_config
from acmegate.signer.ca_key import CaKeyError
from acmegate.signer.chains import is_self_signed
from acmegate.signer.file_key import FileCaKey
from acmegate.signer.setup.create import ExistingRoot, import_ca, init_ca
from acmegate.signer.setup.files import CaSetupError
from acmegate.signer.setup.keygen import KEY_TYPES, CaHash, KeyType
from tests.unit.signer.conftest import MakeCa
from tests.unit.signer.helpers import PASSPHRASE, openssl_verify

E = TypeVar("E", bound=x509.ExtensionType)


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _ext(cert: x509.Certificate, kind: type[E]) -> tuple[bool, E]:
    """(critical, value) of the extension ``kind`` of ``cert``."""
    extension = cert.extensions.get_extension_for_class(kind)
    assert isinstance(extension.value, kind)
    return extension.critical, extension.value


@pytest.mark.parametrize("hash_name", ["sha256", "sha384"])
@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_init_ca_makes_a_root_and_an_issuing_ca_that_verifies_under_it(
    tmp_path: Path, key_type: KeyType, hash_name: CaHash
) -> None:
    files = init_ca(
        tmp_path,
        name="issuing",
        common_name="Example Issuing CA",
        subject=[("C", "DE"), ("O", "Example")],
        key_type=key_type,
        hash=hash_name,
        root_validity_years=20,
        intermediate_validity_years=10,
        passphrase=PASSPHRASE,
    )
    root, issuing = _cert(tmp_path / "root.pem"), _cert(tmp_path / "issuing.pem")
    issuing_key = issuing.public_key()
    assert isinstance(issuing_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
    assert files.certificate == tmp_path / "issuing.pem"
    assert files.chain == (tmp_path / "root.pem",)
    assert files.root_key == tmp_path / "root.key"

    result = openssl_verify("-CAfile", str(tmp_path / "root.pem"), str(tmp_path / "issuing.pem"))
    assert result.returncode == 0, result.stdout + result.stderr
    issuing.verify_directly_issued_by(root)
    assert is_self_signed(root)

    assert (
        issuing.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Example Issuing CA"
    )
    assert issuing.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Example"
    assert issuing.issuer == root.subject
    expected_hash = hashes.SHA256 if hash_name == "sha256" else hashes.SHA384
    for cert in (root, issuing):
        assert isinstance(cert.signature_hash_algorithm, expected_hash)
        assert cert.serial_number > 0 and cert.serial_number.bit_length() > 64
        key = cert.public_key()
        if key_type.startswith("rsa"):
            assert isinstance(key, rsa.RSAPublicKey) and key.key_size == int(key_type[3:])
        else:
            assert isinstance(key, ec.EllipticCurvePublicKey)
            assert key.curve.key_size == int(key_type[4:])

    critical, root_bc = _ext(root, x509.BasicConstraints)
    assert critical and root_bc == x509.BasicConstraints(ca=True, path_length=None)
    critical, root_ku = _ext(root, x509.KeyUsage)
    assert critical and root_ku.key_cert_sign and root_ku.crl_sign
    _, root_ski = _ext(root, x509.SubjectKeyIdentifier)

    critical, bc = _ext(issuing, x509.BasicConstraints)
    assert critical and bc == x509.BasicConstraints(ca=True, path_length=0)
    critical, ku = _ext(issuing, x509.KeyUsage)
    assert critical and ku.key_cert_sign and ku.crl_sign
    _, ski = _ext(issuing, x509.SubjectKeyIdentifier)
    assert ski.digest == x509.SubjectKeyIdentifier.from_public_key(issuing_key).digest
    _, aki = _ext(issuing, x509.AuthorityKeyIdentifier)
    assert aki.key_identifier == root_ski.digest
    assert issuing.not_valid_after_utc <= root.not_valid_after_utc


def test_ca_keys_are_encrypted_and_readable_by_their_owner_only(make_ca: MakeCa) -> None:
    files, _ = make_ca()
    assert files.root_key is not None
    for path in (files.key, files.root_key):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        data = path.read_bytes()
        assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        with pytest.raises(TypeError):
            serialization.load_pem_private_key(data, None)
        serialization.load_pem_private_key(data, PASSPHRASE.encode())


def test_the_generated_configuration_entry_loads_and_the_key_matches(make_ca: MakeCa) -> None:
    files, config = make_ca()
    [ca] = config.certificate_authorities
    assert ca.name == "issuing"
    assert ca.certificate == str(files.certificate)
    assert ca.key == FileKey(path=str(files.key), passphrase=Secret(env="ACMEGATE_CA_PASSPHRASE"))
    assert validate_config(config) == []
    authority = load_authorities(config.certificate_authorities)["issuing"]
    # RFC 8555 §7.4.2: the chain after the leaf holds the issuing CA, not the root.
    assert authority.issuer_chain_pem == files.certificate.read_text()


def test_a_wrong_passphrase_is_reported_with_the_ca_and_where_the_passphrase_comes_from(
    make_ca: MakeCa, monkeypatch: pytest.MonkeyPatch
) -> None:
    files, config = make_ca()
    monkeypatch.setenv("ACMEGATE_CA_PASSPHRASE", "not the passphrase")
    key = config.certificate_authorities[0].key
    assert isinstance(key, FileKey)
    with pytest.raises(CaKeyError) as caught:
        FileCaKey.load("issuing", key)
    message = str(caught.value)
    assert "'issuing'" in message
    assert "env ACMEGATE_CA_PASSPHRASE" in message
    assert str(files.key) in message
    assert "wrong passphrase" in message
    assert "not the passphrase" not in message
    assert validate_config(config) == [f"$.certificate_authorities[0].key: {message}"]


def test_a_missing_passphrase_variable_is_named(
    make_ca: MakeCa, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, config = make_ca()
    monkeypatch.delenv("ACMEGATE_CA_PASSPHRASE")
    [problem] = validate_config(config)
    assert problem.startswith("$.certificate_authorities[0].key: certificate authority 'issuing'")
    assert "environment variable ACMEGATE_CA_PASSPHRASE is not set" in problem


def test_init_ca_never_overwrites_an_existing_ca(make_ca: MakeCa, tmp_path: Path) -> None:
    files, _ = make_ca()
    before = files.key.read_bytes()
    with pytest.raises(CaSetupError, match="refusing to overwrite"):
        init_ca(files.key.parent, name="issuing", common_name="Again", passphrase=PASSPHRASE)
    assert files.key.read_bytes() == before


def test_init_ca_refuses_an_issuing_ca_that_outlives_its_root(tmp_path: Path) -> None:
    with pytest.raises(CaSetupError, match="cannot outlive its root"):
        init_ca(
            tmp_path,
            name="issuing",
            common_name="CA",
            root_validity_years=5,
            intermediate_validity_years=10,
            passphrase=PASSPHRASE,
        )
    assert not any(tmp_path.iterdir())


def test_init_ca_rejects_bad_subject_attributes_and_names(tmp_path: Path) -> None:
    ok = PASSPHRASE
    with pytest.raises(CaSetupError, match=r"C=.DEU.: .*<= 2"):
        init_ca(tmp_path, name="a", common_name="CA", subject=[("C", "DEU")], passphrase=ok)
    with pytest.raises(CaSetupError, match="unknown subject attribute"):
        init_ca(tmp_path, name="a", common_name="CA", subject=[("XX", "y")], passphrase=ok)
    with pytest.raises(CaSetupError, match="CA name"):
        init_ca(tmp_path, name="../evil", common_name="CA", passphrase=ok)
    with pytest.raises(CaSetupError, match="at least 12 characters"):
        init_ca(tmp_path, name="a", common_name="CA", passphrase="")


def test_init_ca_can_put_a_second_issuing_ca_under_an_existing_root(
    make_ca: MakeCa, tmp_path: Path
) -> None:
    first, _ = make_ca()
    assert first.root_key is not None
    out = tmp_path / "second"
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    second = init_ca(
        out,
        name="wifi",
        common_name="Wi-Fi Issuing CA",
        passphrase="another passphrase",
        root=ExistingRoot(
            certificate_pem=first.chain[0].read_bytes(),
            key_pem=first.root_key.read_bytes(),
            key_password=PASSPHRASE,
        ),
        intermediate_validity_years=100,
        clock=clock,
    )
    assert second.root_key is None and not (out / "root.key").exists()
    assert (out / "root.pem").read_bytes() == first.chain[0].read_bytes()
    result = openssl_verify("-CAfile", str(out / "root.pem"), str(second.certificate))
    assert result.returncode == 0, result.stdout + result.stderr
    # Clamped to the root's end rather than outliving it.
    assert (
        _cert(second.certificate).not_valid_after_utc == _cert(out / "root.pem").not_valid_after_utc
    )


def test_init_ca_refuses_a_root_that_is_not_self_signed(make_ca: MakeCa, tmp_path: Path) -> None:
    files, _ = make_ca()
    with pytest.raises(CaSetupError, match="not a self-signed root"):
        init_ca(
            tmp_path / "x",
            name="sub",
            common_name="Sub",
            passphrase=PASSPHRASE,
            root=ExistingRoot(files.certificate.read_bytes(), files.key.read_bytes(), PASSPHRASE),
        )


def test_import_ca_re_encrypts_the_key_and_writes_a_usable_configuration(
    make_ca: MakeCa, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made, _ = make_ca()
    out = tmp_path / "imported"
    # A clear PKCS#1 key, as an enterprise PKI might hand it over.
    clear_key = serialization.load_pem_private_key(made.key.read_bytes(), PASSPHRASE.encode())
    clear_pem = clear_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    files = import_ca(
        out,
        name="corp",
        certificate_pem=made.certificate.read_bytes(),
        key_pem=clear_pem,
        key_password=None,
        chain_pems=[made.chain[0].read_bytes()],
        passphrase="new passphrase",
    )
    assert files.certificate.read_bytes() == made.certificate.read_bytes()
    assert files.chain == (out / "corp-chain.pem",)
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(files.key.read_bytes(), None)

    monkeypatch.setenv("ACMEGATE_CA_PASSPHRASE", "new passphrase")
    config = parse_config(files.config_yaml, base_dir=out)
    assert validate_config(config) == []


def test_import_ca_refuses_a_key_that_belongs_to_another_certificate(
    make_ca: MakeCa, tmp_path: Path
) -> None:
    first, _ = make_ca()
    other, _ = make_ca()
    with pytest.raises(CaSetupError, match="does not belong"):
        import_ca(
            tmp_path / "x",
            name="corp",
            certificate_pem=first.certificate.read_bytes(),
            key_pem=other.key.read_bytes(),
            key_password=PASSPHRASE,
            chain_pems=[first.chain[0].read_bytes()],
            passphrase=PASSPHRASE,
        )
    assert not (tmp_path / "x").exists()


def test_import_ca_refuses_a_wrong_key_password_a_foreign_chain_and_a_non_ca(
    make_ca: MakeCa, tmp_path: Path
) -> None:
    first, _ = make_ca()
    other, _ = make_ca()
    common = {"name": "corp", "passphrase": PASSPHRASE}
    with pytest.raises(CaSetupError, match="wrong passphrase"):
        import_ca(
            tmp_path,
            certificate_pem=first.certificate.read_bytes(),
            key_pem=first.key.read_bytes(),
            key_password="nope",
            chain_pems=[first.chain[0].read_bytes()],
            **common,  # type: ignore[arg-type]
        )
    with pytest.raises(CaSetupError, match=r"did not issue|does not verify"):
        import_ca(
            tmp_path,
            certificate_pem=first.certificate.read_bytes(),
            key_pem=first.key.read_bytes(),
            key_password=PASSPHRASE,
            chain_pems=[other.chain[0].read_bytes()],  # same name, other key
            **common,  # type: ignore[arg-type]
        )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not a CA")])
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(leaf_key.public_key())
        .serial_number(1)
        .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2099, 1, 1, tzinfo=UTC))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(leaf_key, hashes.SHA256())
    )
    with pytest.raises(CaSetupError, match="not a CA certificate"):
        import_ca(
            tmp_path,
            certificate_pem=leaf.public_bytes(serialization.Encoding.PEM),
            key_pem=leaf_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            key_password=None,
            **common,  # type: ignore[arg-type]
        )
    assert not any(tmp_path.glob("corp*"))
