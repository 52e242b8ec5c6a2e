"""CA keys in a PKCS#11 token (SoftHSM2): the token signs, the key never leaves it."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pkcs11
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from acmegate.common.config import Config, Secret, parse_config
from acmegate.common.config.model import Pkcs11Key
from acmegate.common.messages import CertificateSpec, NameAttribute, SanEntry
from acmegate.common.x509names import spki_der
from acmegate.signer import pkcs11_key
from acmegate.signer.authorities import load_authorities, validate_config
from acmegate.signer.issuance import issue
from acmegate.signer.pkcs11_key import open_session, open_token
from acmegate.signer.serials import new_serial
from acmegate.signer.setup.create import init_ca
from acmegate.signer.setup.files import CaFiles, TokenKey
from acmegate.signer.setup.keygen import KeyType
from tests.support.softhsm import SoftHsm, softhsm
from tests.unit.signer.helpers import PASSPHRASE, openssl_verify

PIN_ENV = "ACMEGATE_TEST_PKCS11_PIN"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def hsm(monkeypatch: pytest.MonkeyPatch) -> SoftHsm:
    token = softhsm()
    monkeypatch.setenv(PIN_ENV, token.pin)
    return token


def _token_ca(hsm: SoftHsm, folder: Path, key_type: KeyType = "ec-p256") -> tuple[CaFiles, Config]:
    label = f"ca-{key_type}-{folder.name}"
    files = init_ca(
        folder,
        name="hsm",
        common_name=f"acmegate Token CA {key_type}",
        subject=[("O", "acmegate tests")],
        key_type=key_type,
        hash="sha256",
        passphrase=PASSPHRASE,
        token=TokenKey(hsm.module, hsm.token_label, label, hsm.pin, Secret(env=PIN_ENV)),
    )
    return files, parse_config(files.config_yaml, base_dir=folder)


def _spec(key: ec.EllipticCurvePrivateKey, hash_name: str = "sha256") -> CertificateSpec:
    return CertificateSpec(
        ca="hsm",
        template="device",
        public_key=spki_der(key.public_key()),
        subject=[NameAttribute(oid="2.5.4.3", value="C02TOKEN0001")],
        sans=[SanEntry(type="permanent_identifier", value="C02TOKEN0001")],
        validity_seconds=86400,
        signature_hash=hash_name,  # type: ignore[arg-type]
    )


def test_the_tbs_bytes_do_not_depend_on_the_signing_key() -> None:
    """The premise of token signing: two keys of one algorithm encode the same TBS."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tbs")])
    leaf = ec.generate_private_key(ec.SECP256R1()).public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(leaf)
        .serial_number(new_serial())
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    crl_builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(subject)
        .last_update(NOW)
        .next_update(NOW + timedelta(days=1))
        .add_extension(x509.CRLNumber(7), critical=False)
    )
    pairs = [
        (ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP384R1())),
        (
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
            rsa.generate_private_key(public_exponent=65537, key_size=3072),
        ),
    ]
    for one, other in pairs:
        for algorithm in (hashes.SHA256(), hashes.SHA384()):
            first = builder.sign(one, algorithm)
            second = builder.sign(other, algorithm)
            assert first.tbs_certificate_bytes == second.tbs_certificate_bytes
            assert first.signature != second.signature
            assert (
                crl_builder.sign(one, algorithm).tbs_certlist_bytes
                == crl_builder.sign(other, algorithm).tbs_certlist_bytes
            )


@pytest.mark.parametrize(
    ("key_type", "hash_name"), [("ec-p256", "sha256"), ("ec-p384", "sha384"), ("rsa2048", "sha256")]
)
async def test_a_ca_whose_key_is_in_the_token_issues_certificates_that_verify(
    hsm: SoftHsm, tmp_path: Path, key_type: KeyType, hash_name: str
) -> None:
    files, config = _token_ca(hsm, tmp_path / key_type, key_type)
    assert files.key is None and not (tmp_path / key_type / "hsm.key").exists()
    assert "type: pkcs11" in files.config_yaml and hsm.pin not in files.config_yaml
    authorities = load_authorities(config.certificate_authorities)
    authority = authorities["hsm"]
    assert "PKCS#11 token 'acmegate-tests'" in authority.key.description
    try:
        device = ec.generate_private_key(ec.SECP256R1())
        leaf = await issue(authority, _spec(device, hash_name), now=NOW, serial=new_serial())
        leaf.verify_directly_issued_by(authority.certificate)
        assert leaf.signature_hash_algorithm is not None
        assert leaf.signature_hash_algorithm.name == hash_name
        (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        (tmp_path / "ca.pem").write_text(authority.issuer_chain_pem)
        result = openssl_verify(
            "-CAfile", str(files.chain[0]), "-untrusted", str(tmp_path / "ca.pem"),
            str(tmp_path / "leaf.pem"),
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr

        crl = await authority.key.sign_crl(
            x509.CertificateRevocationListBuilder()
            .issuer_name(authority.certificate.subject)
            .last_update(NOW)
            .next_update(NOW + timedelta(days=1))
            .add_extension(x509.CRLNumber(1), critical=False),
            authority.signature_hash,
        )
        assert crl.is_signature_valid(authority.key.public_key())

        response = await authority.key.sign_ocsp_response(
            ocsp.OCSPResponseBuilder().add_response(
                cert=leaf,
                issuer=authority.certificate,
                algorithm=hashes.SHA1(),
                cert_status=ocsp.OCSPCertStatus.GOOD,
                this_update=NOW,
                next_update=NOW + timedelta(hours=1),
                revocation_time=None,
                revocation_reason=None,
            ),
            authority.certificate,
            authority.signature_hash,
        )
        assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
        assert response.serial_number == leaf.serial_number
        assert response.responder_name == authority.certificate.subject
        public = authority.key.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            from cryptography.hazmat.primitives.asymmetric import padding

            public.verify(
                response.signature, response.tbs_response_bytes, padding.PKCS1v15(),
                hashes.SHA256(),
            )  # fmt: skip
        else:
            public.verify(
                response.signature,
                response.tbs_response_bytes,
                ec.ECDSA(response.signature_hash_algorithm),  # type: ignore[arg-type]
            )
    finally:
        await authorities.close()


def test_the_key_generated_in_the_token_is_sensitive_and_never_extractable(
    hsm: SoftHsm,
) -> None:
    label, _ = hsm.new_key("ec-p384")
    session = open_session(open_token(hsm.module, hsm.token_label), hsm.pin)
    try:
        private = session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, label=label)
        assert private[pkcs11.Attribute.SENSITIVE] is True
        assert private[pkcs11.Attribute.EXTRACTABLE] is False
        assert private[pkcs11.Attribute.NEVER_EXTRACTABLE] is True
        assert private[pkcs11.Attribute.SIGN] is True
        with pytest.raises(pkcs11.PKCS11Error):
            private[pkcs11.Attribute.VALUE]
    finally:
        session.close()


def _usages(hsm: SoftHsm, label: str) -> dict[str, set[str]]:
    """What ``pkcs11-tool --list-objects`` (OpenSC) says each half of ``label`` may do."""
    done = subprocess.run(
        ["pkcs11-tool", "--module", hsm.module, "--token-label", hsm.token_label,
         "--login", "--pin", hsm.pin, "--list-objects"],
        capture_output=True, text=True, check=True, env={**os.environ},
    )  # fmt: skip
    found: dict[str, set[str]] = {}
    for block in re.split(r"\n(?=\S)", done.stdout):
        kind = block.split(" Key Object", 1)[0].strip()
        if f"label:      {label}\n" not in block or kind not in ("Private", "Public"):
            continue
        usage = re.search(r"Usage:\s+(.*)", block)
        found[kind] = set(usage[1].split(", ")) if usage else set()
    return found


@pytest.mark.parametrize("key_type", ["ec-p256", "ec-p384", "rsa2048"])
def test_a_key_generated_in_the_token_can_only_sign_and_verify(hsm: SoftHsm, key_type: str) -> None:
    # docs/pki.md promises sign-only keys: no ECDH derivation, no RSA decryption or key
    # (un)wrapping with a CA key.
    label, _ = hsm.new_key(key_type)
    assert _usages(hsm, label) == {"Private": {"sign"}, "Public": {"verify"}}


def test_a_refused_pin_is_tried_once_per_token_not_once_per_ca(
    hsm: SoftHsm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each refused PIN counts toward the token's lockout: two CAs on one token with a wrong
    # PIN must not cost two attempts (nor a third CA, nor a retry in this process).
    _, config = _token_ca(hsm, tmp_path / "one")
    _, other = _token_ca(hsm, tmp_path / "two")
    both = msgspec.structs.replace(
        config,
        certificate_authorities=[
            config.certificate_authorities[0],
            msgspec.structs.replace(other.certificate_authorities[0], name="hsm2"),
        ],
    )
    monkeypatch.setenv(PIN_ENV, "9999-a-wrong-pin")
    attempts: list[str] = []
    real = pkcs11_key.log_in

    def counting(token: object, pin: str, *, rw: bool) -> object:
        attempts.append(pin)
        return real(token, pin, rw=rw)

    monkeypatch.setattr(pkcs11_key, "log_in", counting)
    problems = validate_config(both)
    assert len(problems) == 2
    assert "PIN of token 'acmegate-tests' was refused" in problems[0]
    assert "refused before in this process; not trying it again" in problems[1]
    assert validate_config(both) != []
    assert attempts == ["9999-a-wrong-pin"]


def _with_key(config: Config, **changes: object) -> Config:
    ca = config.certificate_authorities[0]
    assert isinstance(ca.key, Pkcs11Key)
    key = msgspec.structs.replace(ca.key, **changes)
    return msgspec.structs.replace(
        config, certificate_authorities=[msgspec.structs.replace(ca, key=key)]
    )


def test_a_token_key_that_is_not_the_certificates_is_refused(hsm: SoftHsm, tmp_path: Path) -> None:
    _, config = _token_ca(hsm, tmp_path)
    other, _ = hsm.new_key("ec-p256")
    [problem] = validate_config(_with_key(config, key_label=other))
    assert "does not match the certificate" in problem
    assert f"key {other!r}" in problem


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"token_label": "no-such-token"}, "has no token labelled 'no-such-token'"),
        ({"key_label": "no-such-key"}, "no private key labelled 'no-such-key'"),
        (
            {"pin": Secret(env="ACMEGATE_TEST_WRONG_PIN")},
            "PIN of token 'acmegate-tests' was refused",
        ),
    ],
)
def test_token_problems_are_clear_errors(
    hsm: SoftHsm,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    changes: dict[str, object],
    words: str,
) -> None:
    monkeypatch.setenv("ACMEGATE_TEST_WRONG_PIN", "0000")
    _, config = _token_ca(hsm, tmp_path)
    [problem] = validate_config(_with_key(config, **changes))
    assert problem.startswith("$.certificate_authorities[0].key: certificate authority 'hsm'")
    assert words in problem
