"""A managed Apple device enrolls end to end, and every way it can go wrong is refused.

All four services run in this process on the in-process bus, as in ``acmegate standalone``, against
a real PostgreSQL database; the device is the faithful simulator of docs/apple-attestation.md §12.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from acmegate.common.x509names import (
    PERMANENT_IDENTIFIER,
    UPN,
    decode_permanent_identifier,
    decode_utf8_string,
)
from acmegate.testkit.apple_ca import AttestationCA, LeafClaims
from acmegate.testkit.device import DeviceMode, EnrollmentResult, SimulatedDevice, Stage
from acmegate.testkit.jws import LeadingZeros
from tests.support.certbot_client import enroll_with_certbot_acme
from tests.support.gateway import Gateway
from tests.support.openssl import verify_client_chain

pytestmark = pytest.mark.e2e


async def enroll(gateway: Gateway, device: SimulatedDevice) -> EnrollmentResult:
    try:
        return await device.enroll()
    finally:
        await device.close()


def permanent_identifiers(certificate: x509.Certificate) -> list[str | None]:
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [
        decode_permanent_identifier(name.value)[0]
        for name in san.get_values_for_type(x509.OtherName)
        if name.type_id == PERMANENT_IDENTIFIER
    ]


async def stored_certificates(gateway: Gateway, serial: str) -> int:
    count = await gateway.pool.fetchval(
        "SELECT count(*) FROM pki.certificates WHERE device_serial = $1", serial
    )
    return int(count)


async def test_a_mac_enrolls_and_its_certificate_chains_to_the_root_with_client_auth(
    gateway: Gateway, attestation_ca: AttestationCA, tmp_path: Path
) -> None:
    device = SimulatedDevice(
        gateway.directory_url,
        "C02E2E00001",
        LeafClaims.macos("C02E2E00001", "00006030-000651690A84001C"),
        attestation_ca,
        subject_alt_name={
            "dNSName": "c02e2e00001.corp.example",
            "ntPrincipalName": "llama@example.com",
        },
    )
    result = await enroll(gateway, device)

    assert result.ok, result.problems
    assert "OK" in verify_client_chain(
        gateway.files.root_pem, result.certificate_chain_pem, tmp_path
    )
    leaf = result.certificate
    assert leaf is not None
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "C02E2E00001"
    # Attributes of the signal source reach the certificate through the template.
    assert leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == (
        "Engineering"
    )
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert permanent_identifiers(leaf) == ["C02E2E00001"]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["llama@example.com"]
    assert san.get_values_for_type(x509.DNSName) == ["c02e2e00001.corp.example"]
    assert [n for n in san.get_values_for_type(x509.OtherName) if n.type_id == UPN]
    # The certificate carries the attested Secure Enclave key.
    assert leaf.public_key() == result.attestation.leaf.public_key()
    assert await stored_certificates(gateway, "C02E2E00001") == 1


def upns(certificate: x509.Certificate) -> list[str]:
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [
        decode_utf8_string(name.value)
        for name in san.get_values_for_type(x509.OtherName)
        if name.type_id == UPN
    ]


async def test_csr_names_the_sources_do_not_vouch_for_are_not_certified(
    gateway: Gateway, attestation_ca: AttestationCA
) -> None:
    """A genuine, managed Mac may still write anything into its CSR: the UPN of the domain
    administrator, another device's DNS name. Neither may reach a certificate."""
    serial = "C02E2E00001"

    def mac(names: dict[str, str | list[str]]) -> SimulatedDevice:
        return SimulatedDevice(
            gateway.directory_url,
            serial,
            LeafClaims.macos(serial),
            attestation_ca,
            subject_alt_name=names,
        )

    forged = await enroll(gateway, mac({"ntPrincipalName": "administrator@corp.example"}))
    assert forged.failed_stage is Stage.FINALIZE, forged.certificate
    assert forged.problem is not None and forged.problem.kind == "badCSR"
    assert "UPN otherName 'administrator@corp.example' is not admitted by csr_rules" in (
        forged.problem.detail
    )
    borrowed = await enroll(gateway, mac({"dNSName": "c02e2e00002.corp.example"}))
    assert borrowed.problem is not None and borrowed.problem.kind == "badCSR"
    assert "dNSName 'c02e2e00002.corp.example' is not admitted" in borrowed.problem.detail
    assert await stored_certificates(gateway, serial) == 0

    honest = await enroll(
        gateway,
        mac({"ntPrincipalName": "llama@example.com", "dNSName": "c02e2e00001.corp.example"}),
    )
    assert honest.ok, honest.problems
    assert honest.certificate is not None and upns(honest.certificate) == ["llama@example.com"]
    san = honest.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.DNSName) == ["c02e2e00001.corp.example"]


async def test_an_iphone_enrolls_with_its_p256_key(
    gateway: Gateway, attestation_ca: AttestationCA, tmp_path: Path
) -> None:
    device = SimulatedDevice(
        gateway.directory_url,
        "DMQE2EPHONE",
        LeafClaims.ios("DMQE2EPHONE", "00008120-001C1D8136500032"),
        attestation_ca,
        key_size=256,
    )
    result = await enroll(gateway, device)
    assert result.ok, result.problems
    assert "OK" in verify_client_chain(
        gateway.files.root_pem, result.certificate_chain_pem, tmp_path
    )
    assert permanent_identifiers(result.certificate) == ["DMQE2EPHONE"]


async def test_a_device_may_name_itself_by_its_attested_udid(
    gateway: Gateway, attestation_ca: AttestationCA
) -> None:
    udid = "00006030-000651690A84001C"
    device = SimulatedDevice(
        gateway.directory_url, udid, LeafClaims.macos("C02E2E00001", udid), attestation_ca
    )
    result = await enroll(gateway, device)
    assert result.ok, result.problems
    assert permanent_identifiers(result.certificate) == ["C02E2E00001"]


async def test_apple_jws_signatures_that_lost_a_leading_zero_are_accepted(
    gateway: Gateway, attestation_ca: AttestationCA
) -> None:
    device = SimulatedDevice(
        gateway.directory_url,
        "C02E2E00002",
        LeafClaims.macos("C02E2E00002"),
        attestation_ca,
        strip_leading_zeros=LeadingZeros.FORCE_ANY,
    )
    result = await enroll(gateway, device)
    assert result.ok, result.problems


NEGATIVE_MODES = [
    (DeviceMode.WRONG_TOKEN_HASH, Stage.CHALLENGE, "badAttestationStatement"),
    (DeviceMode.STALE_ATTESTATION, Stage.CHALLENGE, "badAttestationStatement"),
    (DeviceMode.MISSING_FRESHNESS, Stage.CHALLENGE, "badAttestationStatement"),
    (DeviceMode.WRONG_ROOT, Stage.CHALLENGE, "badAttestationStatement"),
    (DeviceMode.IDENTIFIER_MISMATCH, Stage.CHALLENGE, "badAttestationStatement"),
    (DeviceMode.FOREIGN_KEY_TYPE, Stage.CHALLENGE, "badAttestationStatement"),
    (DeviceMode.LEAF_FROM_ROOT, Stage.CHALLENGE, "badAttestationStatement"),
    (DeviceMode.EMPTY_ATT_STMT, Stage.CHALLENGE, "badAttestationStatement"),
    (DeviceMode.ERROR_PAYLOAD, Stage.CHALLENGE, "rejectedIdentifier"),
    (DeviceMode.CSR_KEY_MISMATCH, Stage.FINALIZE, "badCSR"),
]


@pytest.mark.parametrize(
    ("mode", "stage", "kind"), NEGATIVE_MODES, ids=[m.value for m, _, _ in NEGATIVE_MODES]
)
async def test_each_negative_mode_fails_with_its_problem_and_no_certificate(
    gateway: Gateway, attestation_ca: AttestationCA, mode: DeviceMode, stage: Stage, kind: str
) -> None:
    device = SimulatedDevice(
        gateway.directory_url,
        "C02E2E00001",
        LeafClaims.macos("C02E2E00001"),
        attestation_ca,
        mode=mode,
    )
    result = await enroll(gateway, device)
    assert not result.ok
    assert result.failed_stage is stage
    assert result.problem is not None and result.problem.kind == kind, result.problems
    assert result.certificate_chain_pem is None
    assert await stored_certificates(gateway, "C02E2E00001") == 0


async def test_an_identifier_mismatch_names_the_rejected_identifier(
    gateway: Gateway, attestation_ca: AttestationCA
) -> None:
    device = SimulatedDevice(
        gateway.directory_url,
        "C02E2E00001",
        LeafClaims.macos("C02E2E00001"),
        attestation_ca,
        mode=DeviceMode.IDENTIFIER_MISMATCH,
    )
    result = await enroll(gateway, device)
    assert result.problem is not None
    assert result.problem.subproblem_kinds == ["rejectedIdentifier"]
    assert result.problem.subproblems[0]["identifier"] == {
        "type": "permanent-identifier",
        "value": "C02E2E00001",
    }


async def test_a_device_reusing_an_old_attestation_is_refused(
    gateway: Gateway, attestation_ca: AttestationCA
) -> None:
    device = SimulatedDevice(
        gateway.directory_url,
        "C02E2E00002",
        LeafClaims.macos("C02E2E00002"),
        attestation_ca,
        mode=DeviceMode.REUSE_PREVIOUS_ATTESTATION,
    )
    try:
        first = await device.enroll()
        second = await device.enroll()
    finally:
        await device.close()
    assert first.ok
    assert second.problem is not None and second.problem.kind == "badAttestationStatement"
    assert await stored_certificates(gateway, "C02E2E00002") == 1


@pytest.mark.parametrize(
    ("serial", "reason"),
    [
        ("C02NOTKNOWN", "not known"),
        ("C02UNMANAGED", "not managed"),
        ("C02NOGROUP", "none of the groups"),
    ],
    ids=["unknown", "unmanaged", "out-of-group"],
)
async def test_devices_the_inventory_does_not_vouch_for_get_no_certificate(
    gateway: Gateway, attestation_ca: AttestationCA, serial: str, reason: str
) -> None:
    device = SimulatedDevice(
        gateway.directory_url, serial, LeafClaims.macos(serial), attestation_ca
    )
    result = await enroll(gateway, device)
    assert result.failed_stage is Stage.FINALIZE
    assert result.problem is not None and result.problem.kind == "rejectedIdentifier"
    assert reason in result.problem.detail
    assert await stored_certificates(gateway, serial) == 0


async def test_many_devices_enroll_concurrently_each_once(
    gateway: Gateway, attestation_ca: AttestationCA
) -> None:
    serials = ["C02E2E00001", "C02E2E00002", "DMQE2EPHONE"] * 4

    async def one(serial: str) -> EnrollmentResult:
        claims = LeafClaims.macos(serial)
        return await enroll(
            gateway, SimulatedDevice(gateway.directory_url, serial, claims, attestation_ca)
        )

    results = await asyncio.gather(*(one(s) for s in serials))
    assert all(r.ok for r in results), [r.problems for r in results if not r.ok]
    issued = await gateway.pool.fetchval("SELECT count(*) FROM pki.certificates")
    delivered = await gateway.pool.fetchval("SELECT count(*) FROM acme.certificates")
    assert issued == delivered == len(serials)
    assert len({r.certificate.serial_number for r in results}) == len(serials)


async def test_the_certbot_acme_library_enrolls_as_an_independent_client(
    gateway: Gateway, attestation_ca: AttestationCA, tmp_path: Path
) -> None:
    chain = await asyncio.to_thread(
        enroll_with_certbot_acme, gateway.directory_url, "C02E2E00002", attestation_ca
    )
    assert "OK" in verify_client_chain(gateway.files.root_pem, chain, tmp_path)
    leaf = x509.load_pem_x509_certificate(chain.encode())
    assert permanent_identifiers(leaf) == ["C02E2E00002"]
