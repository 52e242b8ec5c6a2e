"""Enrollment through the whole gateway with Jamf Pro as the signal source (the fake server).

Issue #3's list: a Mac and an iPhone with each auth type; unknown, unmanaged and out-of-group
devices refused with no certificate; Jamf down or slow; a token expiring mid-run; Jamf's
attributes in the certificate; revoke-on-failure once the device leaves Jamf; never more than
five connections to Jamf.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from acmegate.testkit.apple_ca import AttestationCA, LeafClaims
from acmegate.testkit.device import EnrollmentResult, SimulatedDevice, Stage
from acmegate.testkit.fakejamf import FakeJamf
from tests.support.fake_jamf import (
    MAC2_SERIAL,
    MAC_SERIAL,
    MAC_UDID,
    NO_GROUP_SERIAL,
    PHONE_SERIAL,
    PHONE_UDID,
    UNMANAGED_SERIAL,
    AuthType,
    fake_jamf,
    jamf_overrides,
    jamf_source,
)
from tests.support.gateway import Gateway, gateway_config, running_gateway

pytestmark = pytest.mark.e2e
__all__ = ["fake_jamf"]  # the fixture, imported for this module

OpenGateway = Callable[..., contextlib.AbstractAsyncContextManager[Gateway]]


@pytest.fixture
def open_gateway(
    tmp_path: Path, attestation_ca: AttestationCA, database_url: str, fake_jamf: FakeJamf
) -> OpenGateway:
    """``async with open_gateway(auth=…, source={…}, **overrides) as gateway``."""

    @contextlib.asynccontextmanager
    async def opened(
        *,
        auth: AuthType = "client_credentials",
        revoke_on_failure: bool = False,
        source: dict[str, Any] | None = None,
        **extra: Any,
    ) -> AsyncIterator[Gateway]:
        folder = tmp_path / "gateway"
        settings = source or {}
        overrides = jamf_overrides(
            fake_jamf.url,
            folder,
            auth=auth,
            revoke_on_failure=revoke_on_failure,
            source=jamf_source(fake_jamf.url, folder, auth=auth, **settings),
            **extra,
        )
        files = gateway_config(folder, attestation_ca, overrides=overrides)
        async with running_gateway(files, database_url) as gateway:
            yield gateway

    return opened


def mac(
    gateway: Gateway, ca: AttestationCA, serial: str = MAC_SERIAL, **kw: Any
) -> SimulatedDevice:
    udid = MAC_UDID if serial == MAC_SERIAL else None
    return SimulatedDevice(gateway.directory_url, serial, LeafClaims.macos(serial, udid), ca, **kw)


def iphone(gateway: Gateway, ca: AttestationCA) -> SimulatedDevice:
    return SimulatedDevice(
        gateway.directory_url,
        PHONE_SERIAL,
        LeafClaims.ios(PHONE_SERIAL, PHONE_UDID),
        ca,
        key_size=256,
    )


async def enroll(device: SimulatedDevice) -> EnrollmentResult:
    try:
        return await device.enroll()
    finally:
        await device.close()


async def certificates(gateway: Gateway, serial: str) -> list[dict[str, Any]]:
    rows = await gateway.pool.fetch(
        "SELECT serial, status, revocation_reason FROM pki.certificates WHERE device_serial = $1",
        serial,
    )
    return [dict(row) for row in rows]


def subject_ou(certificate: x509.Certificate) -> str:
    return str(
        certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value
    )


def emails(certificate: x509.Certificate) -> list[str]:
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return list(san.get_values_for_type(x509.RFC822Name))


@pytest.mark.parametrize("auth", ["client_credentials", "bearer_token"])
async def test_a_mac_and_an_iphone_enroll_with_jamfs_attributes_in_their_certificates(
    open_gateway: OpenGateway, attestation_ca: AttestationCA, fake_jamf: FakeJamf, auth: AuthType
) -> None:
    async with open_gateway(auth=auth) as gateway:
        mac_result = await enroll(mac(gateway, attestation_ca))
        phone_result = await enroll(iphone(gateway, attestation_ca))
        assert mac_result.ok, mac_result.problems
        assert phone_result.ok, phone_result.problems
        # ${/source/department} and ${/source/email} of the template, from Jamf.
        assert subject_ou(mac_result.certificate) == "Engineering"
        assert emails(mac_result.certificate) == ["llama@example.com"]
        assert subject_ou(phone_result.certificate) == "Sales"
        assert emails(phone_result.certificate) == ["vicuna@example.com"]
        assert len(await certificates(gateway, MAC_SERIAL)) == 1
        assert len(await certificates(gateway, PHONE_SERIAL)) == 1
    kind = "client" if auth == "client_credentials" else "user"
    assert fake_jamf.tokens.events("issued", kind)
    # The attestation told a Mac from an iPhone: each was searched in its inventory first.
    inventory = [p for p in fake_jamf.stats.paths("/api/") if "inventory" in p or "mobile" in p]
    assert inventory == ["/api/v4/computers-inventory", "/api/v2/mobile-devices/detail"]


@pytest.mark.parametrize(
    ("serial", "reason"),
    [
        ("C02NOSUCH000", "device C02NOSUCH000 is not known to signal source 'jamf'"),
        (UNMANAGED_SERIAL, f"device {UNMANAGED_SERIAL} is not managed (signal source 'jamf')"),
        (
            NO_GROUP_SERIAL,
            f"device {NO_GROUP_SERIAL} is in none of the groups 'Cert-Eligible' "
            "(signal source 'jamf')",
        ),
    ],
    ids=["unknown", "unmanaged", "out-of-group"],
)
async def test_devices_jamf_does_not_vouch_for_get_their_problem_and_no_certificate(
    open_gateway: OpenGateway, attestation_ca: AttestationCA, serial: str, reason: str
) -> None:
    async with open_gateway() as gateway:
        result = await enroll(mac(gateway, attestation_ca, serial))
        assert result.failed_stage is Stage.FINALIZE
        assert result.problem is not None and result.problem.kind == "rejectedIdentifier"
        assert result.problem.detail == reason
        assert await certificates(gateway, serial) == []


async def test_a_csr_dns_name_lookup_vouches_only_for_the_attested_device(
    open_gateway: OpenGateway, attestation_ca: AttestationCA
) -> None:
    """identity: csr_san_dns looks the device up by a name it wrote itself: the record found
    must be the attested device's, or an unknown Mac gets a managed Mac's certificate."""
    by_dns = [
        {
            "name": "jamf-issuance",
            "purpose": "certificate_issuance",
            "signal_source": "jamf",
            "identity": "csr_san_dns",
        }
    ]
    name = f"{MAC_SERIAL.lower()}.corp.example"
    async with open_gateway(lookup_policies=by_dns) as gateway:
        thief = mac(gateway, attestation_ca, "C02UNKNOWN99", subject_alt_name={"dNSName": name})
        result = await enroll(thief)
        assert result.failed_stage is Stage.FINALIZE
        assert result.problem is not None and result.problem.kind == "rejectedIdentifier"
        assert result.problem.detail == (
            f"the CSR's dNSName {name} names a device of signal source 'jamf' that is not the "
            "attested device (serial C02UNKNOWN99)"
        )
        assert await certificates(gateway, "C02UNKNOWN99") == []
        # The device the name belongs to gets its certificate, with its own Jamf values.
        honest = await enroll(mac(gateway, attestation_ca, subject_alt_name={"dNSName": name}))
        assert honest.ok, honest.problems
        assert emails(honest.certificate) == ["llama@example.com"]
        san = honest.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        assert san.value.get_values_for_type(x509.DNSName) == [name]


async def test_jamf_down_fails_the_order_cleanly_with_on_unavailable_fail(
    open_gateway: OpenGateway, attestation_ca: AttestationCA, fake_jamf: FakeJamf
) -> None:
    async with open_gateway(source={"on_unavailable": "fail"}) as gateway:
        fake_jamf.faults.error_rate = 1.0
        result = await enroll(mac(gateway, attestation_ca))
        assert result.problem is not None and result.problem.kind == "serverInternal"
        assert result.problem.detail == (
            "signal source 'jamf' is unavailable: Jamf Pro server error: "
            "POST /api/oauth/token answered HTTP 503"
        )
        assert await certificates(gateway, MAC_SERIAL) == []


async def test_jamf_down_stays_retryable_within_the_budget_then_fails_cleanly(
    open_gateway: OpenGateway, attestation_ca: AttestationCA, fake_jamf: FakeJamf
) -> None:
    async with open_gateway(source={"on_unavailable": "retry", "retries": 0}) as gateway:
        fake_jamf.faults.error_rate = 1.0
        result = await enroll(mac(gateway, attestation_ca))
        assert result.problem is not None and result.problem.kind == "serverInternal"
        # max_deliveries 4 in the tests' gateway: three deliveries asked Jamf, then it answered.
        assert len(fake_jamf.stats.paths("/api/oauth/token")) == 3
        assert await certificates(gateway, MAC_SERIAL) == []

        fake_jamf.faults.error_rate = 0.0
        fake_jamf.faults.fail_next = 2  # back within the budget
        assert (await enroll(mac(gateway, attestation_ca, MAC2_SERIAL))).ok


async def test_a_slow_jamf_times_out_and_nothing_is_issued(
    open_gateway: OpenGateway, attestation_ca: AttestationCA, fake_jamf: FakeJamf
) -> None:
    async with open_gateway(
        source={"on_unavailable": "fail", "timeout": "1s", "retries": 0}
    ) as gateway:
        fake_jamf.faults.delay = 1.5
        result = await enroll(mac(gateway, attestation_ca))
        assert result.problem is not None and result.problem.kind == "serverInternal"
        assert "timed out" in result.problem.detail
        assert await certificates(gateway, MAC_SERIAL) == []


async def test_a_token_expiring_mid_run_is_renewed(
    open_gateway: OpenGateway, attestation_ca: AttestationCA, fake_jamf: FakeJamf
) -> None:
    async with open_gateway(source={"cache": 0}) as gateway:
        assert (await enroll(mac(gateway, attestation_ca))).ok
        fake_jamf.expire_tokens()
        assert (await enroll(mac(gateway, attestation_ca, MAC2_SERIAL))).ok
    assert [e.event for e in fake_jamf.tokens.log] == [
        "issued",
        "expired-by-fault",
        "rejected",
        "issued",
    ]


async def test_revoke_on_failure_revokes_once_the_device_leaves_jamf(
    open_gateway: OpenGateway, attestation_ca: AttestationCA, fake_jamf: FakeJamf
) -> None:
    async with open_gateway(
        revoke_on_failure=True, revocation_check={"enabled": True, "interval": "1s"}
    ) as gateway:
        assert (await enroll(mac(gateway, attestation_ca))).ok
        assert (await enroll(mac(gateway, attestation_ca, MAC2_SERIAL))).ok
        fake_jamf.remove_device(MAC_SERIAL)
        for _ in range(100):
            rows = await certificates(gateway, MAC_SERIAL)
            if rows[0]["status"] == "revoked":
                break
            await asyncio.sleep(0.1)
        assert [(r["status"], r["revocation_reason"]) for r in rows] == [
            ("revoked", "cessationOfOperation")
        ]
        # The device still in Jamf keeps its certificate.
        assert [r["status"] for r in await certificates(gateway, MAC2_SERIAL)] == ["valid"]


@pytest.mark.parametrize("batch_size", [0, 100])
async def test_the_gateway_never_opens_more_than_five_connections_to_jamf(
    open_gateway: OpenGateway, attestation_ca: AttestationCA, fake_jamf: FakeJamf, batch_size: int
) -> None:
    async with open_gateway(source={"cache": 0, "batch_size": batch_size}) as gateway:
        assert (await enroll(mac(gateway, attestation_ca))).ok  # the token is fetched once
        fake_jamf.reset_stats()
        fake_jamf.faults.delay = 0.1
        serials = [MAC_SERIAL, MAC2_SERIAL] * 6
        results = await asyncio.gather(
            *(enroll(mac(gateway, attestation_ca, serial)) for serial in serials)
        )
        assert all(r.ok for r in results), [r.problems for r in results if not r.ok]
    if batch_size:
        # Batched: concurrent lookups shared requests (docs/jamf.md "Batching").
        assert 1 <= len(fake_jamf.stats.requests) < 12
    else:
        assert len(fake_jamf.stats.requests) >= 12
    assert fake_jamf.stats.max_in_flight <= 5
    assert fake_jamf.stats.max_connections <= 5 and fake_jamf.stats.over_limit == 0
