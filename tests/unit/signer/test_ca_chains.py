"""Chains a relying party will validate, or a refusal: ``ca import``, ``ca install``, ``ca init``
under an existing root, service start and ``ca list`` check every certificate of the chain as
``openssl verify`` would (path length, validity windows, key usage, ending in a root)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from acmegate.common.config import parse_config
from acmegate.signer.authorities import AuthorityError, load_authorities
from acmegate.signer.setup.create import ExistingRoot, import_ca, init_ca
from acmegate.signer.setup.csr import create_csr, install_ca
from acmegate.signer.setup.files import CaSetupError
from acmegate.signer.setup.report import report_authorities
from tests.unit.signer.helpers import PASSPHRASE, openssl_verify

NOW = datetime.now(UTC).replace(microsecond=0)
YEAR = timedelta(days=365)


@dataclass
class Ca:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def usage(*, digital_signature: bool = True, crl_sign: bool = True) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=crl_sign,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip


def ca(
    name: str,
    issuer: Ca | None = None,
    *,
    pathlen: int | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
    not_before: datetime = NOW - YEAR,
    not_after: datetime = NOW + 5 * YEAR,
    key_usage: x509.KeyUsage | None = None,
) -> Ca:
    """A CA certificate for ``name``, self-signed without ``issuer``."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=pathlen), critical=True)
        .add_extension(key_usage or usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(issuer.key if issuer else key, hashes.SHA256())
    )
    return Ca(key, certificate)


def imported(tmp_path: Path, issuing: Ca, *chain: Ca) -> None:
    import_ca(
        tmp_path / "out",
        name="devices",
        certificate_pem=issuing.pem,
        key_pem=issuing.key_pem,
        key_password=None,
        chain_pems=[c.pem for c in chain],
        passphrase=PASSPHRASE,
    )


def test_an_issuing_ca_below_a_pathlen_0_ca_is_refused_as_openssl_refuses_its_leaves(
    tmp_path: Path,
) -> None:
    root = ca("Root")
    policy = ca("Policy CA", root, pathlen=0)
    issuing = ca("Devices CA", policy, pathlen=0)
    # What a relying party says of a leaf of that CA.
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "C02LEAF")]))
        .issuer_name(issuing.certificate.subject)
        .public_key(leaf_key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
        .sign(issuing.key, hashes.SHA256())
    )
    (tmp_path / "root.pem").write_bytes(root.pem)
    (tmp_path / "untrusted.pem").write_bytes(issuing.pem + policy.pem)
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    verdict = openssl_verify(
        "-CAfile", str(tmp_path / "root.pem"), "-untrusted", str(tmp_path / "untrusted.pem"),
        str(tmp_path / "leaf.pem"),
    )  # fmt: skip
    assert "path length constraint exceeded" in verdict.stdout + verdict.stderr

    with pytest.raises(CaSetupError) as refused:
        imported(tmp_path, issuing, policy, root)
    assert str(refused.value) == (
        "CN=Policy CA allows no CA below it (pathlen:0), but CN=Devices CA is one: relying "
        "parties would refuse its certificates (path length constraint exceeded)"
    )
    assert not (tmp_path / "out").exists()


def test_every_certificate_of_the_chain_must_be_valid_now(tmp_path: Path) -> None:
    expired_root = ca("Old Root", not_before=NOW - 20 * YEAR, not_after=NOW - timedelta(days=1))
    issuing = ca("Devices CA", expired_root, pathlen=0)
    with pytest.raises(CaSetupError, match=r"^CN=Old Root expired on \d{4}-\d\d-\d\d"):
        imported(tmp_path, issuing, expired_root)
    root = ca("Root")
    future = ca("Devices CA", root, pathlen=0, not_before=NOW + timedelta(days=2))
    with pytest.raises(CaSetupError, match=r"^CN=Devices CA is not valid before \d{4}-"):
        imported(tmp_path, future, root)


def test_the_chain_must_end_in_a_self_signed_root_below_the_issuing_ca(tmp_path: Path) -> None:
    root = ca("Root")
    with pytest.raises(CaSetupError, match="is a self-signed root, not an issuing CA"):
        imported(tmp_path, root)
    policy = ca("Policy CA", root, pathlen=1)
    issuing = ca("Devices CA", policy, pathlen=0)
    with pytest.raises(CaSetupError, match="no root certificate: give the chain up to"):
        imported(tmp_path, issuing)
    with pytest.raises(CaSetupError, match="ends with CN=Policy CA, which is not a self-signed"):
        imported(tmp_path, issuing, policy)
    imported(tmp_path, issuing, policy, root)  # the whole chain: accepted


def test_the_issuing_ca_must_be_allowed_to_sign_crls_and_ocsp_responses(tmp_path: Path) -> None:
    root = ca("Root")
    no_ocsp = ca("Devices CA", root, pathlen=0, key_usage=usage(digital_signature=False))
    with pytest.raises(CaSetupError, match=r"keyUsage lacks digitalSignature \(OCSP"):
        imported(tmp_path, no_ocsp, root)
    no_crl = ca("Devices CA", root, pathlen=0, key_usage=usage(crl_sign=False))
    with pytest.raises(CaSetupError, match=r"keyUsage lacks cRLSign"):
        imported(tmp_path, no_crl, root)


def test_install_checks_the_returned_certificate_the_same_way(tmp_path: Path) -> None:
    root = ca("Root")
    policy = ca("Policy CA", root, pathlen=0)
    request = create_csr(tmp_path, name="devices", common_name="Devices CA", passphrase=PASSPHRASE)
    csr = x509.load_pem_x509_csr(request.csr.read_bytes())
    signed = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(policy.certificate.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(hours=1))
        .not_valid_after(NOW + YEAR)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(), critical=True)
        .sign(policy.key, hashes.SHA256())
    )
    with pytest.raises(CaSetupError, match="path length constraint exceeded"):
        install_ca(
            tmp_path,
            name="devices",
            certificate_pem=signed.public_bytes(serialization.Encoding.PEM),
            chain_pems=[policy.pem, root.pem],
            passphrase=PASSPHRASE,
        )
    assert not (tmp_path / "devices.pem").exists()


def test_init_refuses_an_expired_root_or_one_that_allows_no_ca_below(tmp_path: Path) -> None:
    old = ca("Old Root", not_before=NOW - 20 * YEAR, not_after=NOW - timedelta(days=1))
    leaf_only = ca("Leaf-only Root", pathlen=0)
    for root, message in ((old, "expired on"), (leaf_only, "allows no CA below it")):
        with pytest.raises(CaSetupError, match=message):
            init_ca(
                tmp_path / root.certificate.subject.rfc4514_string(),
                name="devices",
                common_name="Devices CA",
                passphrase=PASSPHRASE,
                root=ExistingRoot(root.pem, root.key_pem),
            )


def test_a_configured_ca_whose_chain_fails_is_refused_at_start_and_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACMEGATE_CA_PASSPHRASE", PASSPHRASE)
    root = ca("Root", not_after=NOW + 10 * YEAR)
    policy = ca("Policy CA", root, pathlen=1, not_after=NOW + 3 * YEAR)
    issuing = ca("Devices CA", policy, pathlen=0, not_after=NOW + 8 * YEAR)
    imported(tmp_path, issuing, policy, root)
    out = tmp_path / "out"
    config_yaml = f"""
certificate_authorities:
  - name: devices
    certificate: {out / "devices.pem"}
    chain: [{out / "devices-chain.pem"}]
    key: {{type: file, path: {out / "devices.key"}, passphrase: {{env: ACMEGATE_CA_PASSPHRASE}}}}
"""
    config = parse_config(config_yaml, base_dir=tmp_path)
    authorities = load_authorities(config.certificate_authorities)  # fine today
    assert list(authorities) == ["devices"]
    # Four years on, the policy CA has expired (a clock that moved on, same files).
    later = NOW + 4 * YEAR

    class Later:
        def now(self) -> datetime:
            return later

    with pytest.raises(AuthorityError, match=r"certificate_authorities\[0\]\.chain: CN="):
        load_authorities(config.certificate_authorities, clock=Later())
    [report] = report_authorities(config, check_keys=False, clock=Later())
    assert any("expired on" in problem for problem in report.problems), report.problems
