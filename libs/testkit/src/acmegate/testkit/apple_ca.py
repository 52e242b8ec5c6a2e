"""A faithful fake of Apple's Enterprise Attestation CA, for tests and the device simulator.

Apple's real "Apple Enterprise Attestation Sub CA 1" is not public (docs/apple-attestation.md §4),
so a simulator mints its own root and intermediate with Apple's names and the gateway is configured
to trust that root instead. The leaves follow the real macOS 15.5 sample byte for byte where it
matters (docs/apple-attestation.md §5, §12): 6-byte millisecond serial, validity
now−24 h … now+90 d, subject
``CN=<hex sha256 of the EC point>, OU=AAA Certification, O=Apple Inc., ST=California``, and the
extensions in Apple's order with Apple's encodings (raw ASCII strings, DER INTEGERs for SIP and
kexts, the raw 32-byte freshness code).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID

from acmegate.common.apple_oids import (
    OID_FRESHNESS,
    OID_LLB_VERSION,
    OID_OS_VERSION,
    OID_SECURE_BOOT,
    OID_SEPOS_VERSION,
    OID_SERIAL_NUMBER,
    OID_SIP_STATUS,
    OID_SOFTWARE_UPDATE_DEVICE_ID,
    OID_THIRD_PARTY_KEXTS,
    OID_UDID,
)

ROOT_NAME = x509.Name(
    [
        x509.NameAttribute(NameOID.COMMON_NAME, "Apple Enterprise Attestation Root CA"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Apple Inc."),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
    ]
)
INTERMEDIATE_NAME = x509.Name(
    [
        x509.NameAttribute(NameOID.COMMON_NAME, "Apple Enterprise Attestation Sub CA 1"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Apple Inc."),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
    ]
)

_ROOT_FILES = ("root.pem", "root.key", "sub-ca.pem", "sub-ca.key")

# Keys Apple never attests: the Secure Enclave holds EC P-256 and P-384 keys only
# (docs/apple-attestation.md §10), so a leaf carrying one of these is forged or from something
# that is not a device.
ForeignKeyType = Literal["rsa-2048", "dsa-2048", "ed25519", "ed448", "x25519", "p-224", "p-521"]
FOREIGN_KEY_TYPES: tuple[ForeignKeyType, ...] = (
    "rsa-2048",
    "dsa-2048",
    "ed25519",
    "ed448",
    "x25519",
    "p-224",
    "p-521",
)


def foreign_public_key(kind: ForeignKeyType) -> CertificatePublicKeyTypes:
    """A fresh public key of a type no Secure Enclave holds."""
    if kind == "rsa-2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    if kind == "dsa-2048":
        return dsa.generate_private_key(key_size=2048).public_key()
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate().public_key()
    if kind == "ed448":
        return ed448.Ed448PrivateKey.generate().public_key()
    if kind == "x25519":
        return x25519.X25519PrivateKey.generate().public_key()
    if kind == "p-224":
        return ec.generate_private_key(ec.SECP224R1()).public_key()
    return ec.generate_private_key(ec.SECP521R1()).public_key()


@dataclass(frozen=True)
class LeafClaims:
    """The device properties an attestation leaf asserts; ``None`` omits the OID."""

    serial_number: str | None = "C02TESTSERIAL"  # 1.2.840.113635.100.8.9.1
    udid: str | None = "00006030-000651690A84001C"  # …8.9.2
    os_version: str | None = "17.4"  # …8.10.1
    sepos_version: str | None = "17.4"  # …8.10.2
    llb_version: str | None = "17.4"  # …8.10.3
    software_update_device_id: str | None = "J514sAP"  # …8.9.4
    sip_status: int | None = 0  # …8.13.1 DER INTEGER, 0 = enabled
    secure_boot: str | None = "Full Security"  # …8.13.2
    third_party_kexts: int | None = 0  # …8.13.3 DER INTEGER, 0 = not allowed

    @classmethod
    def macos(cls, serial: str, udid: str | None = None) -> LeafClaims:
        """An Apple-silicon Mac; without ``udid`` one is derived from the serial."""
        return cls(serial_number=serial, udid=udid or _fake_udid("00006030", serial))

    @classmethod
    def ios(cls, serial: str, udid: str | None = None) -> LeafClaims:
        """An iPhone: no SIP / secure boot / kext OIDs, which Apple only sends for macOS."""
        return cls(
            serial_number=serial,
            udid=udid or _fake_udid("00008120", serial),
            software_update_device_id="D73AP",
            sip_status=None,
            secure_boot=None,
            third_party_kexts=None,
        )

    def user_enrollment(self) -> LeafClaims:
        """The same device under User Enrollment: Apple omits serial and UDID
        (docs/apple-attestation.md §6)."""
        return dataclasses.replace(self, serial_number=None, udid=None)


def _fake_udid(chip_id: str, serial: str) -> str:
    # Apple's format: <8 hex chip id>-<16 hex ECID>, e.g. 00006030-000651690A84001C.
    return f"{chip_id}-{hashlib.sha256(serial.encode()).hexdigest()[:16].upper()}"


def _der_integer(value: int) -> bytes:
    """Minimal DER INTEGER (two's complement), as Apple encodes 13.1 and 13.3."""
    length = max(1, (value.bit_length() + 8) // 8)
    body = value.to_bytes(length, "big", signed=True)
    if len(body) > 127:
        raise ValueError("integer too large for this encoder")
    return bytes([0x02, len(body)]) + body


def _utc(when: datetime | None) -> datetime:
    moment = when if when is not None else datetime.now(UTC)
    if moment.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    # X.509 times have second precision; dropping microseconds keeps notBefore/After exact.
    return moment.astimezone(UTC).replace(microsecond=0)


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


# digitalSignature, nonRepudiation, keyEncipherment, dataEncipherment = `03 02 04 F0`
# (docs/apple-attestation.md §5).
_LEAF_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=True,
    key_encipherment=True,
    data_encipherment=True,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


@dataclass(frozen=True)
class AttestationCA:
    """A test "Apple Enterprise Attestation Root CA" and its "Sub CA 1" (both P-384)."""

    root: x509.Certificate
    root_key: ec.EllipticCurvePrivateKey
    intermediate: x509.Certificate
    intermediate_key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls, *, now: datetime | None = None) -> AttestationCA:
        """A fresh root (25 years, like Apple's) and intermediate (10 years)."""
        moment = _utc(now)
        root_key = ec.generate_private_key(ec.SECP384R1())
        intermediate_key = ec.generate_private_key(ec.SECP384R1())
        # Extension order of Apple's real root: BC, SKI, KU (the intermediate is not public).
        root = (
            x509.CertificateBuilder()
            .subject_name(ROOT_NAME)
            .issuer_name(ROOT_NAME)
            .public_key(root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(moment - timedelta(days=1))
            .not_valid_after(moment + timedelta(days=25 * 365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False
            )
            .add_extension(_ca_key_usage(), critical=True)
            .sign(root_key, hashes.SHA384())
        )
        intermediate = (
            x509.CertificateBuilder()
            .subject_name(INTERMEDIATE_NAME)
            .issuer_name(ROOT_NAME)
            .public_key(intermediate_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(moment - timedelta(days=1))
            .not_valid_after(moment + timedelta(days=10 * 365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
                critical=False,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(intermediate_key.public_key()),
                critical=False,
            )
            .add_extension(_ca_key_usage(), critical=True)
            .sign(root_key, hashes.SHA384())
        )
        return cls(root, root_key, intermediate, intermediate_key)

    @classmethod
    def load(cls, directory: Path) -> AttestationCA:
        """Read ``root.pem``, ``root.key``, ``sub-ca.pem`` and ``sub-ca.key`` from ``directory``."""
        root = x509.load_pem_x509_certificate((directory / "root.pem").read_bytes())
        intermediate = x509.load_pem_x509_certificate((directory / "sub-ca.pem").read_bytes())
        root_key = _load_ec_key(directory / "root.key")
        intermediate_key = _load_ec_key(directory / "sub-ca.key")
        return cls(root, root_key, intermediate, intermediate_key)

    def save(self, directory: Path) -> None:
        """Write the four files; keys are unencrypted PKCS#8 (test material) with mode 0600."""
        directory.mkdir(parents=True, exist_ok=True)
        pem = serialization.Encoding.PEM
        write_file(directory / "root.pem", self.root.public_bytes(pem), 0o644)
        write_file(directory / "sub-ca.pem", self.intermediate.public_bytes(pem), 0o644)
        write_file(directory / "root.key", _key_pem(self.root_key), 0o600)
        write_file(directory / "sub-ca.key", _key_pem(self.intermediate_key), 0o600)

    @classmethod
    def load_or_generate(cls, directory: Path) -> AttestationCA:
        """Load the CA saved in ``directory``, or generate and save one there."""
        if all((directory / name).exists() for name in _ROOT_FILES):
            return cls.load(directory)
        ca = cls.generate()
        ca.save(directory)
        return ca

    def mint_leaf(
        self,
        public_key: CertificatePublicKeyTypes,
        claims: LeafClaims,
        *,
        freshness: bytes | None,
        now: datetime | None = None,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        issuer: AttestationCA | None = None,
        signed_by_root: bool = False,
    ) -> x509.Certificate:
        """An attestation leaf for ``public_key``, as Apple's servers would issue it.

        ``freshness`` is the raw freshness code (SHA-256 of the challenge token,
        docs/apple-attestation.md §7); ``None`` omits the OID (a negative mode). ``issuer`` signs
        with another CA's intermediate (the "leaf from another root" negative mode); by default
        this CA signs. ``signed_by_root`` signs with the root itself, skipping the Sub CA (Apple
        never does: a negative mode). A ``public_key`` that is not an EC key of P-256 or P-384
        makes a leaf Apple never issues either (:func:`foreign_public_key`).
        """
        signer = issuer if issuer is not None else self
        issuer_name, signing_key = signer.intermediate.subject, signer.intermediate_key
        if signed_by_root:
            issuer_name, signing_key = signer.root.subject, signer.root_key
        issued_at = now if now is not None else datetime.now(UTC)
        moment = _utc(issued_at)
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            point = public_key.public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        else:
            point = public_key.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, hashlib.sha256(point).hexdigest()),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "AAA Certification"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Apple Inc."),
                x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "California"),
            ]
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_name)
            .public_key(public_key)
            # Apple's leaf serial is the issuance time in milliseconds (6 bytes,
            # docs/apple-attestation.md §5).
            .serial_number(int(issued_at.timestamp() * 1000) or 1)
            .not_valid_before(_utc(not_before) if not_before else moment - timedelta(hours=24))
            .not_valid_after(_utc(not_after) if not_after else moment + timedelta(days=90))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_LEAF_KEY_USAGE, critical=True)
        )
        for oid, value in _apple_extensions(claims, freshness):
            builder = builder.add_extension(x509.UnrecognizedExtension(oid, value), critical=False)
        return builder.sign(signing_key, hashes.SHA384())

    def chain_for(self, leaf: x509.Certificate) -> list[x509.Certificate]:
        """The ``x5c`` a device sends: ``[leaf, intermediate]`` (no root, docs/apple-attestation.md
        §3)."""
        return [leaf, self.intermediate]


def _apple_extensions(
    claims: LeafClaims, freshness: bytes | None
) -> list[tuple[x509.ObjectIdentifier, bytes]]:
    """Apple's device-property extensions in the order of the real sample (docs/apple-attestation.md
    §5, rows 3–12)."""
    ordered: list[tuple[x509.ObjectIdentifier, bytes | None]] = [
        (OID_SEPOS_VERSION, _ascii(claims.sepos_version)),
        (OID_LLB_VERSION, _ascii(claims.llb_version)),
        (OID_OS_VERSION, _ascii(claims.os_version)),
        (OID_SOFTWARE_UPDATE_DEVICE_ID, _ascii(claims.software_update_device_id)),
        (OID_SECURE_BOOT, _ascii(claims.secure_boot)),
        (OID_SIP_STATUS, None if claims.sip_status is None else _der_integer(claims.sip_status)),
        (
            OID_THIRD_PARTY_KEXTS,
            None if claims.third_party_kexts is None else _der_integer(claims.third_party_kexts),
        ),
        (OID_SERIAL_NUMBER, _ascii(claims.serial_number)),
        (OID_UDID, _ascii(claims.udid)),
        (OID_FRESHNESS, freshness),
    ]
    return [(oid, value) for oid, value in ordered if value is not None]


def _ascii(value: str | None) -> bytes | None:
    # Apple puts the bare characters in extnValue, with no inner ASN.1 string tag
    # (docs/apple-attestation.md §5).
    return None if value is None else value.encode("ascii")


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_ec_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: not an EC private key")
    return key


def write_file(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` with ``mode`` whatever the umask (0600 for private keys)."""
    # Create with the final mode so a private key is never readable by others, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(path, mode)
