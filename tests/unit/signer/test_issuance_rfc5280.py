"""Issued certificates are RFC 5280-clean for every template shape (pkilint's PKIX checks),
and a template value that cannot be certified is a clear error before anything is signed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from acmegate.common.config import Secret, parse_config
from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.common.messages import CertificateSpec, NameAttribute, SanEntry
from acmegate.common.x509names import spki_der
from acmegate.signer.authorities import Authority, load_authorities
from acmegate.signer.issuance import build_certificate, issue
from acmegate.signer.serials import new_serial
from acmegate.signer.setup.create import init_ca
from acmegate.signer.setup.keygen import KeyType
from tests.unit.signer.conftest import MakeCa
from tests.unit.signer.helpers import PASSPHRASE, lint_certificate

NOW = datetime.now(UTC).replace(microsecond=0)
BASE_URL = "http://pki.example.com"
EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CN = "2.5.4.3"

SHAPES: dict[str, dict[str, object]] = {
    # The guide's template: CN=${/csr/subject/commonname} and nothing else.
    "subject-only": {"subject": [NameAttribute(CN, "C02XK0AAJGH5")], "sans": []},
    # An empty subject: the identity is in the SAN alone, which is then critical.
    "san-only": {"subject": [], "sans": [SanEntry("permanent_identifier", "C02XK0AAJGH5")]},
    "upn-permanent-identifier-rfc822-dns": {
        "subject": [
            NameAttribute(CN, "C02XK0AAJGH5"),
            NameAttribute("2.5.4.10", "Example, Inc."),
            NameAttribute("2.5.4.11", "Engineering"),
        ],
        "sans": [
            SanEntry("upn", "llama@corp.example.com"),
            SanEntry("permanent_identifier", "C02XK0AAJGH5"),
            SanEntry("rfc822", "llama@example.com"),
            SanEntry("dns", "llama-mac.example.com"),
            SanEntry("uri", "https://devices.example.com/C02XK0AAJGH5"),
        ],
    },
    "sha384": {
        "subject": [NameAttribute(CN, "C02XK0AAJGH5")],
        "sans": [SanEntry("permanent_identifier", "C02XK0AAJGH5")],
        "signature_hash": "sha384",
    },
    # A Wi-Fi template asking for keyEncipherment (RSA key transport) for every device.
    "wifi-key-encipherment": {
        "subject": [NameAttribute(CN, "C02XK0AAJGH5")],
        "sans": [SanEntry("dns", "c02xk0aajgh5.example.com")],
        "key_usage": ["digital_signature", "key_encipherment"],
        "extended_key_usage": ["1.3.6.1.5.5.7.3.2", "1.3.6.1.5.5.7.3.1"],
    },
}


def _spec(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, **changes: object
) -> CertificateSpec:
    spec = CertificateSpec(
        ca="issuing",
        template="device",
        public_key=spki_der(key.public_key()),
        subject=[NameAttribute(CN, "C02XK0AAJGH5")],
        sans=[SanEntry("permanent_identifier", "C02XK0AAJGH5")],
        validity_seconds=365 * 86400,
    )
    return msgspec.structs.replace(spec, **changes)


def _authority(make_ca: MakeCa, key_type: KeyType = "ec-p256") -> Authority:
    _, config = make_ca(key_type)
    return load_authorities(config.certificate_authorities, base_url=BASE_URL)["issuing"]


@pytest.fixture(scope="module")
def authorities(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Authority]:
    """One issuing CA per key type for the whole module (RSA-3072 keys take a while)."""
    made = {}
    for key_type in ("ec-p256", "ec-p384", "rsa3072"):
        folder = tmp_path_factory.mktemp(key_type)
        files = init_ca(
            folder,
            name="issuing",
            common_name=f"acmegate Lint CA {key_type}",
            subject=[("C", "DE"), ("O", "acmegate tests")],
            key_type=key_type,  # type: ignore[arg-type]
            hash="sha384" if key_type == "ec-p384" else "sha256",
            passphrase=PASSPHRASE,
            passphrase_source=Secret(env="ACMEGATE_TEST_LINT_PASSPHRASE"),
        )
        config = parse_config(files.config_yaml, base_dir=folder)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("ACMEGATE_TEST_LINT_PASSPHRASE", PASSPHRASE)
            made[key_type] = load_authorities(config.certificate_authorities, base_url=BASE_URL)[
                "issuing"
            ]
    return made


@pytest.mark.parametrize("ca_key", ["ec-p256", "ec-p384", "rsa3072"])
@pytest.mark.parametrize("device_key", ["ec", "rsa"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
async def test_every_template_shape_passes_pkilint(
    authorities: dict[str, Authority], ca_key: str, device_key: str, shape: str
) -> None:
    key = EC_KEY if device_key == "ec" else RSA_KEY
    leaf = await issue(
        authorities[ca_key], _spec(key, **SHAPES[shape]), now=NOW, serial=new_serial()
    )
    assert lint_certificate(leaf.public_bytes(serialization.Encoding.DER)) == []


def test_pkilint_would_catch_what_issuance_prevents() -> None:
    """The linter is live: a certificate with keyEncipherment on an EC key is reported."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lint")])
    bad = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(EC_KEY.public_key())
        .serial_number(new_serial())
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=1))
        .add_extension(
            x509.KeyUsage(True, False, True, False, False, False, False, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    findings = lint_certificate(bad.public_bytes(serialization.Encoding.DER))
    assert any("key_usage_value_prohibited_for_ec" in f for f in findings), findings


async def test_certificates_name_the_crl_and_ocsp_urls_of_their_ca(make_ca: MakeCa) -> None:
    leaf = await issue(_authority(make_ca), _spec(EC_KEY), now=NOW, serial=new_serial())
    cdp = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    assert not cdp.critical
    assert [p.full_name for p in cdp.value] == [
        [x509.UniformResourceIdentifier(f"{BASE_URL}/crl/issuing.crl")]
    ]
    aia = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    assert not aia.critical
    assert [(d.access_method, d.access_location.value) for d in aia.value] == [
        (AuthorityInformationAccessOID.OCSP, f"{BASE_URL}/ocsp/issuing"),
        (AuthorityInformationAccessOID.CA_ISSUERS, f"{BASE_URL}/ca/issuing.cer"),
    ]


async def test_without_a_base_url_certificates_carry_no_cdp_and_no_aia(make_ca: MakeCa) -> None:
    _, config = make_ca()
    authority = load_authorities(config.certificate_authorities)["issuing"]
    leaf = await issue(authority, _spec(EC_KEY), now=NOW, serial=new_serial())
    extensions = {type(e.value) for e in leaf.extensions}
    assert x509.CRLDistributionPoints not in extensions
    assert x509.AuthorityInformationAccess not in extensions


async def test_key_usages_an_ec_key_cannot_have_are_left_out(make_ca: MakeCa) -> None:
    authority = _authority(make_ca)
    usages = ["digital_signature", "key_encipherment"]
    ec_leaf = await issue(authority, _spec(EC_KEY, key_usage=usages), now=NOW, serial=new_serial())
    rsa_leaf = await issue(
        authority, _spec(RSA_KEY, key_usage=usages), now=NOW, serial=new_serial()
    )
    ec_usage = ec_leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    rsa_usage = rsa_leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ec_usage.digital_signature and not ec_usage.key_encipherment
    assert rsa_usage.digital_signature and rsa_usage.key_encipherment

    with pytest.raises(AcmeError) as caught:
        build_certificate(
            authority, _spec(EC_KEY, key_usage=["key_encipherment"]), now=NOW, serial=1
        )
    assert caught.value.kind is ErrorKind.BAD_CSR
    assert "key_encipherment, which a EC key cannot have" in caught.value.detail


async def test_a_san_the_template_yields_twice_is_certified_once(make_ca: MakeCa) -> None:
    sans = [
        SanEntry("dns", "llama.example.com"),
        SanEntry("dns", "LLAMA.example.com"),
        SanEntry("permanent_identifier", "C02XK0AAJGH5"),
        SanEntry("rfc822", "llama@example.com"),
        SanEntry("permanent_identifier", "C02XK0AAJGH5"),
        SanEntry("rfc822", "llama@example.com"),
    ]
    leaf = await issue(_authority(make_ca), _spec(EC_KEY, sans=sans), now=NOW, serial=new_serial())
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["llama.example.com"]
    assert san.get_values_for_type(x509.RFC822Name) == ["llama@example.com"]
    assert len(san.get_values_for_type(x509.OtherName)) == 1


@pytest.mark.parametrize(
    ("changes", "kind", "detail"),
    [
        (
            {"subject": [NameAttribute(CN, "C" * 65)]},
            ErrorKind.BAD_CSR,
            "subject CN is 65 characters long; RFC 5280 allows at most 64 (ub-common-name)",
        ),
        (
            {"subject": [NameAttribute("2.5.4.11", "x" * 70)]},
            ErrorKind.BAD_CSR,
            "subject OU is 70 characters long; RFC 5280 allows at most 64",
        ),
        (
            {"subject": [NameAttribute(CN, "")]},
            ErrorKind.SERVER_INTERNAL,
            "cannot issue: subject attribute CN is empty",
        ),
        (
            {"sans": [SanEntry("dns", "")]},
            ErrorKind.SERVER_INTERNAL,
            "cannot issue: SAN dns is empty",
        ),
        (
            {"sans": [SanEntry("dns", "bücher.example")]},
            ErrorKind.BAD_CSR,
            "SAN dNSName 'bücher.example' holds non-ASCII characters; RFC 5280 §4.2.1.6 "
            "allows ASCII only (write internationalised names as A-labels, xn--…)",
        ),
        (
            {"sans": [SanEntry("rfc822", "lläma@example.com")]},
            ErrorKind.BAD_CSR,
            "SAN rfc822Name 'lläma@example.com' holds non-ASCII characters",
        ),
        (
            {"sans": [SanEntry("uri", "devices/C02XK0AAJGH5")]},
            ErrorKind.BAD_CSR,
            "SAN URI 'devices/C02XK0AAJGH5' is not an absolute URI",
        ),
        (
            {"sans": [SanEntry("uri", "https:///C02XK0AAJGH5")]},
            ErrorKind.BAD_CSR,
            "has an authority without a host",
        ),
    ],
    ids=[
        "cn-over-64",
        "ou-over-64",
        "empty-cn",
        "empty-dns",
        "non-ascii-dns",
        "non-ascii-email",
        "relative-uri",
        "uri-without-host",
    ],
)
def test_template_values_that_cannot_be_certified_are_clear_errors(
    make_ca: MakeCa, changes: dict[str, object], kind: ErrorKind, detail: str
) -> None:
    with pytest.raises(AcmeError) as caught:
        build_certificate(_authority(make_ca), _spec(EC_KEY, **changes), now=NOW, serial=1)
    assert caught.value.kind is kind
    assert detail in caught.value.detail
