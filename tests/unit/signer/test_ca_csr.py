"""An issuing CA signed by an outside root (``ca csr`` → the root signs → ``ca install``), and
``ca list``'s report of each configured CA."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from acmegate.common.config import Secret, parse_config
from acmegate.common.config.model import FileKey
from acmegate.common.messages import CertificateSpec, NameAttribute, SanEntry
from acmegate.common.x509names import spki_der
from acmegate.signer.authorities import load_authorities
from acmegate.signer.issuance import issue
from acmegate.signer.serials import new_serial
from acmegate.signer.setup.csr import create_csr, install_ca
from acmegate.signer.setup.files import CaSetupError, TokenKey
from acmegate.signer.setup.keygen import KeyType
from acmegate.signer.setup.report import report_authorities
from tests.support.softhsm import softhsm
from tests.unit.signer.conftest import MakeCa
from tests.unit.signer.helpers import openssl_verify

DOC = Path(__file__).resolve().parents[3] / "docs" / "pki.md"


def documented_ca_cnf() -> str:
    """The ``ca.cnf`` docs/pki.md tells a root's operators to sign with (so it cannot drift)."""
    found = re.search(r"<!-- pki-test: ca.cnf -->\n```ini\n(.*?)```", DOC.read_text(), re.S)
    assert found, "docs/pki.md lost its ca.cnf block"
    return found[1]


CA_EXTENSIONS = documented_ca_cnf() + "[v3_leaf]\nbasicConstraints = critical, CA:FALSE\n"


def openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def enterprise_root(tmp_path: Path) -> Path:
    """An "enterprise" root made with openssl alone (as AD CS or an offline root would be)."""
    folder = tmp_path / "enterprise"
    folder.mkdir()
    (folder / "ext.cnf").write_text(CA_EXTENSIONS)
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "root.key",
        "-out", "root.pem", "-days", "3650", "-subj", "/O=Example Corp/CN=Example Enterprise Root",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )  # fmt: skip
    return folder


def sign_with_root(root: Path, csr: Path, out: Path, extensions: str = "v3_ca") -> Path:
    openssl(
        "x509", "-req", "-in", str(csr), "-CA", "root.pem", "-CAkey", "root.key",
        "-CAcreateserial", "-days", "1825", "-sha256", "-extfile", "ext.cnf",
        "-extensions", extensions, "-out", str(out),
        cwd=root,
    )  # fmt: skip
    return out


async def _issue_and_verify(config_yaml: str, folder: Path, root: Path, tmp_path: Path) -> None:
    config = parse_config(config_yaml, base_dir=folder)
    authorities = load_authorities(config.certificate_authorities)
    authority = authorities["devices"]
    try:
        device = ec.generate_private_key(ec.SECP256R1())
        leaf = await issue(
            authority,
            CertificateSpec(
                ca="devices",
                template="device",
                public_key=spki_der(device.public_key()),
                subject=[NameAttribute(oid="2.5.4.3", value="C02ROOTED001")],
                sans=[SanEntry(type="permanent_identifier", value="C02ROOTED001")],
                validity_seconds=86400,
            ),
            now=datetime.now(UTC),
            serial=new_serial(),
        )
        (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        (tmp_path / "issuing.pem").write_text(authority.issuer_chain_pem)
        result = openssl_verify(
            "-CAfile", str(root / "root.pem"), "-untrusted", str(tmp_path / "issuing.pem"),
            "-purpose", "sslclient", str(tmp_path / "leaf.pem"),
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.strip().endswith("OK")
    finally:
        await authorities.close()


@pytest.mark.parametrize("key_type", ["ec-p384", "rsa2048"])
async def test_an_issuing_ca_signed_by_an_outside_root_issues_verifiable_certificates(
    enterprise_root: Path, tmp_path: Path, passphrase: str, key_type: KeyType
) -> None:
    out = tmp_path / "ca"
    made = create_csr(
        out,
        name="devices",
        common_name="Example Device CA",
        subject=[("O", "Example Corp")],
        key_type=key_type,
        passphrase=passphrase,
    )
    request = x509.load_pem_x509_csr(made.csr.read_bytes())
    assert request.is_signature_valid
    assert request.subject.rfc4514_string() == "CN=Example Device CA,O=Example Corp"
    assert made.key is not None and made.key.stat().st_mode & 0o777 == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in made.key.read_bytes()

    signed = sign_with_root(enterprise_root, made.csr, tmp_path / "signed.pem")
    files = install_ca(
        out,
        name="devices",
        certificate_pem=signed.read_bytes(),
        chain_pems=[(enterprise_root / "root.pem").read_bytes()],
        passphrase=passphrase,
    )
    assert files.certificate == out / "devices.pem"
    assert files.chain == (out / "devices-chain.pem",)
    assert "path: " + str((out / "devices.key").resolve()) in files.config_yaml
    await _issue_and_verify(files.config_yaml, out, enterprise_root, tmp_path)


async def test_a_token_key_gets_its_csr_signed_by_an_outside_root(
    enterprise_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hsm = softhsm()
    monkeypatch.setenv("ACMEGATE_TEST_PKCS11_PIN", hsm.pin)
    token = TokenKey(
        hsm.module,
        hsm.token_label,
        f"rooted-{tmp_path.name}",
        hsm.pin,
        Secret(env="ACMEGATE_TEST_PKCS11_PIN"),
    )
    out = tmp_path / "ca"
    made = create_csr(out, name="devices", common_name="Example Token CA", token=token)
    assert made.key is None and not (out / "devices.key").exists()
    assert x509.load_pem_x509_csr(made.csr.read_bytes()).is_signature_valid

    signed = sign_with_root(enterprise_root, made.csr, tmp_path / "signed.pem")
    files = install_ca(
        out,
        name="devices",
        certificate_pem=signed.read_bytes(),
        chain_pems=[(enterprise_root / "root.pem").read_bytes()],
        token=token,
    )
    assert "type: pkcs11" in files.config_yaml and "ACMEGATE_TEST_PKCS11_PIN" in files.config_yaml
    await _issue_and_verify(files.config_yaml, out, enterprise_root, tmp_path)


def test_install_refuses_what_does_not_fit(
    enterprise_root: Path, tmp_path: Path, passphrase: str
) -> None:
    out = tmp_path / "ca"
    made = create_csr(out, name="devices", common_name="Example Device CA", passphrase=passphrase)
    other = create_csr(tmp_path / "other", name="other", common_name="Other", passphrase=passphrase)
    root_pem = (enterprise_root / "root.pem").read_bytes()

    def install(certificate: Path, chain: list[bytes]) -> str:
        with pytest.raises(CaSetupError) as caught:
            install_ca(
                out,
                name="devices",
                certificate_pem=certificate.read_bytes(),
                chain_pems=chain,
                passphrase=passphrase,
            )
        return str(caught.value)

    for_other_key = sign_with_root(enterprise_root, other.csr, tmp_path / "other.pem")
    assert "is not for the key" in install(for_other_key, [root_pem])

    not_a_ca = sign_with_root(enterprise_root, made.csr, tmp_path / "leaf.pem", "v3_leaf")
    assert "not a CA certificate" in install(not_a_ca, [root_pem])

    signed = sign_with_root(enterprise_root, made.csr, tmp_path / "signed.pem")
    unrelated_root = tmp_path / "unrelated"
    unrelated_root.mkdir()
    openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "k.pem", "-out", "root.pem",
        "-subj", "/O=Example Corp/CN=Example Enterprise Root",
        "-addext", "basicConstraints=critical,CA:TRUE", cwd=unrelated_root,
    )  # fmt: skip
    assert "does not verify" in install(signed, [(unrelated_root / "root.pem").read_bytes()])
    assert "give the chain up to the root" in install(signed, [])
    assert not (out / "devices.pem").exists()


def test_ca_list_reports_chain_validity_key_and_storage(
    make_ca: MakeCa, monkeypatch: pytest.MonkeyPatch
) -> None:
    files, config = make_ca("ec-p384", name="devices")
    _, second = make_ca("rsa2048", name="second")
    config = msgspec.structs.replace(
        config,
        certificate_authorities=[
            *config.certificate_authorities,
            *second.certificate_authorities,
            # A CA whose key file belongs to another CA, and one whose passphrase is unset.
            msgspec.structs.replace(
                second.certificate_authorities[0],
                name="mismatch",
                key=config.certificate_authorities[0].key,
            ),
            msgspec.structs.replace(
                config.certificate_authorities[0],
                name="locked",
                key=FileKey(
                    path=str(files.key), passphrase=Secret(env="ACMEGATE_TEST_NO_PASSPHRASE")
                ),
            ),
        ],
    )
    reports = {r.name: r for r in report_authorities(config)}
    devices = reports["devices"]
    assert devices.chain == [
        "CN=acmegate Test Issuing CA,O=acmegate tests,C=DE",
        "CN=acmegate Test Issuing CA Root,O=acmegate tests,C=DE",
    ]
    assert devices.key_algorithm == "EC P-384"
    assert devices.key_storage.startswith(f"encrypted file {files.key}")
    assert devices.key_matches is True and devices.problems == []
    assert devices.not_after is not None and devices.not_before is not None
    assert reports["second"].key_algorithm == "RSA 2048" and reports["second"].key_matches
    assert reports["mismatch"].key_matches is False
    assert "does not match the certificate" in reports["mismatch"].problems[0]
    assert reports["locked"].key_matches is None
    assert "ACMEGATE_TEST_NO_PASSPHRASE is not set" in reports["locked"].problems[0]
