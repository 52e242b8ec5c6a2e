"""Rate limits of the ACME edge (issue #8 "Limits a public endpoint needs"): counted in
PostgreSQL, so every frontend replica enforces the same limit; over it, ``429`` with
``urn:ietf:params:acme:error:rateLimited`` and ``Retry-After`` (RFC 8555 §6.6)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from acmegate.cli.compose import running
from acmegate.testkit.acme_session import AcmeResponse, AcmeSession
from acmegate.testkit.apple_ca import AttestationCA, LeafClaims
from acmegate.testkit.device import DeviceMode, SimulatedDevice
from acmegate.testkit.jws import JwsSigner
from tests.support.balancer import replica_configs, round_robin
from tests.support.gateway import Gateway, gateway_config, running_gateway

pytestmark = pytest.mark.e2e

RATE_LIMITED = "urn:ietf:params:acme:error:rateLimited"
NEW_ACCOUNT = {"termsOfServiceAgreed": True}


def limits(**values: Any) -> dict[str, Any]:
    """``rate_limits`` overrides; every limit not named is off, so only one is in play."""
    off: dict[str, Any] = {
        "new_accounts_per_ip": None,
        "new_orders_per_account": None,
        "failed_validations_per_device": None,
        "failed_admin_logins_per_ip": None,
    }
    return {"rate_limits": {**off, **values}}


def assert_rate_limited(response: AcmeResponse, *, max_retry_after: float) -> None:
    assert response.status == 429, response.text
    assert response.content_type == "application/problem+json"
    assert response.json_object()["type"] == RATE_LIMITED
    retry_after = response.headers.get("Retry-After", "")
    assert retry_after.isdigit(), retry_after
    assert 1 <= int(retry_after) <= max_retry_after
    assert response.nonce, "a rateLimited answer carries a fresh Replay-Nonce too"


async def new_account(
    acme: AcmeSession, url: str, *, signer: JwsSigner | None = None, **headers: str
) -> AcmeResponse:
    """newAccount with a fresh key (or ``signer``'s), the nonce from the last answer."""
    body = acme.sign(
        url,
        NEW_ACCOUNT,
        nonce=await acme.take_nonce(),
        use_jwk=True,
        signer=signer or JwsSigner.generate(),
    )
    return await acme.post_raw(url, body, headers=headers)


async def test_300_new_accounts_from_one_address_stop_at_the_limit_on_both_replicas(
    tmp_path: Path, attestation_ca: AttestationCA, database_url: str
) -> None:
    files = gateway_config(
        tmp_path / "gw",
        attestation_ca,
        overrides=limits(new_accounts_per_ip={"limit": 50, "period": "1h"}),
    )
    replica_ports, configs = replica_configs(files)
    connector = aiohttp.TCPConnector(force_close=True)  # every request to the other replica
    async with (
        running(configs[0], ["frontend"], database=database_url, in_process=True) as first,
        running(configs[1], ["frontend"], database=database_url, in_process=True),
        round_robin(files.port, replica_ports) as served,
        aiohttp.ClientSession(connector=connector) as http,
        AcmeSession(files.directory_url, http=http) as acme,
    ):
        url = await acme.url_of("newAccount")
        kept = JwsSigner.generate()
        statuses: Counter[int] = Counter()
        for index in range(300):
            response = await new_account(acme, url, signer=kept if index == 0 else None)
            statuses[response.status] += 1
            if response.status != 201:
                # 3600 s / 50 accounts: one more account every 72 s.
                assert_rate_limited(response, max_retry_after=72)
        assert statuses == {201: 50, 429: 250}
        assert served[replica_ports[0]] > 100 and served[replica_ports[1]] > 100
        pool = first.runtime.require_pool()
        assert await pool.fetchval("SELECT count(*) FROM acme.accounts") == 50
        # A key that already has an account gets it back (200): that creates nothing.
        again = await new_account(acme, url, signer=kept)
        assert again.status == 200, again.text


@pytest.fixture
async def proxied(
    tmp_path: Path, attestation_ca: AttestationCA, database_url: str
) -> AsyncIterator[Gateway]:
    """A gateway behind a proxy on 127.0.0.1 it trusts; two accounts per client address."""
    files = gateway_config(
        tmp_path / "gw",
        attestation_ca,
        overrides={
            **limits(new_accounts_per_ip={"limit": 2, "period": "1h"}),
            "server": {"trusted_proxies": ["127.0.0.0/8", "10.0.0.0/8"]},
        },
    )
    async with running_gateway(files, database_url) as gateway:
        yield gateway


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit(
    proxied: Gateway,
) -> None:
    async with AcmeSession(proxied.directory_url) as acme:
        url = await acme.url_of("newAccount")
        one = {"X-Forwarded-For": "203.0.113.7"}
        assert (await new_account(acme, url, **one)).status == 201
        assert (await new_account(acme, url, **one)).status == 201
        assert_rate_limited(await new_account(acme, url, **one), max_retry_after=1800)
        # Another client behind the same proxy is not affected.
        other = {"X-Forwarded-For": "203.0.113.8"}
        assert (await new_account(acme, url, **other)).status == 201
        # The client cannot hide behind an address it prepends itself: the rightmost
        # address no trusted proxy vouches for is the client (10.1.2.3 is a trusted hop).
        spoofed = {"X-Forwarded-For": "198.51.100.1, 203.0.113.7, 10.1.2.3"}
        assert_rate_limited(await new_account(acme, url, **spoofed), max_retry_after=1800)
        # IPv6 clients are counted by /64: one host usually holds the whole prefix.
        for address in ("2001:db8:1:2::1", "2001:db8:1:2:ffff::9"):
            assert (await new_account(acme, url, **{"X-Forwarded-For": address})).status == 201
        v6 = {"X-Forwarded-For": "2001:db8:1:2::abcd"}
        assert_rate_limited(await new_account(acme, url, **v6), max_retry_after=1800)


async def test_forwarded_addresses_from_an_untrusted_peer_are_ignored(
    tmp_path: Path, attestation_ca: AttestationCA, database_url: str
) -> None:
    files = gateway_config(
        tmp_path / "gw",
        attestation_ca,
        overrides=limits(new_accounts_per_ip={"limit": 2, "period": "1h"}),
    )
    async with running_gateway(files, database_url), AcmeSession(files.directory_url) as acme:
        url = await acme.url_of("newAccount")
        for index in range(2):
            response = await new_account(acme, url, **{"X-Forwarded-For": f"203.0.113.{index}"})
            assert response.status == 201
        # No trusted proxy is configured: the header is the client's own claim.
        fake = {"X-Forwarded-For": "203.0.113.99"}
        assert_rate_limited(await new_account(acme, url, **fake), max_retry_after=1800)


async def order_for(acme: AcmeSession, serial: str) -> AcmeResponse:
    url = await acme.url_of("newOrder")
    payload = {"identifiers": [{"type": "permanent-identifier", "value": serial}]}
    body = acme.sign(url, payload, nonce=await acme.take_nonce())
    return await acme.post_raw(url, body)


async def test_new_orders_per_account_stop_at_the_limit(
    tmp_path: Path, attestation_ca: AttestationCA, database_url: str
) -> None:
    files = gateway_config(
        tmp_path / "gw",
        attestation_ca,
        overrides=limits(new_orders_per_account={"limit": 3, "period": "1h"}),
    )
    async with (
        running_gateway(files, database_url) as gateway,
        AcmeSession(files.directory_url) as acme,
        AcmeSession(files.directory_url) as other,
    ):
        await acme.new_account()
        for _ in range(3):
            assert (await order_for(acme, "C02E2E00001")).status == 201
        refused = await order_for(acme, "C02E2E00001")
        # 3 orders per hour: the next one in 1200 s.
        assert_rate_limited(refused, max_retry_after=1200)
        assert int(refused.headers["Retry-After"]) > 1100
        assert "3 new orders per account per 1h" in refused.json_object()["detail"]
        # Another account has its own budget.
        await other.new_account()
        assert (await order_for(other, "C02E2E00001")).status == 201
        assert await gateway.pool.fetchval("SELECT count(*) FROM acme.orders") == 4


async def test_failed_validations_of_a_device_stop_its_new_orders(
    tmp_path: Path, attestation_ca: AttestationCA, database_url: str
) -> None:
    files = gateway_config(
        tmp_path / "gw",
        attestation_ca,
        overrides=limits(failed_validations_per_device={"limit": 2, "period": "1h"}),
    )

    async def enroll(serial: str, mode: DeviceMode = DeviceMode.GENUINE) -> Any:
        device = SimulatedDevice(
            files.directory_url, serial, LeafClaims.macos(serial), attestation_ca, mode=mode
        )
        try:
            return await device.enroll()
        finally:
            await device.close()

    async with running_gateway(files, database_url):
        for _ in range(2):
            failed = await enroll("C02E2E00001", DeviceMode.WRONG_TOKEN_HASH)
            assert failed.problem is not None
            assert failed.problem.kind == "badAttestationStatement"
        stopped = await enroll("C02E2E00001")
        assert stopped.problem is not None and stopped.problem.kind == "rateLimited"
        assert stopped.order_url is None, "no order is created for a device over its limit"
        assert "C02E2E00001" in stopped.problem.detail
        # Other devices enroll as usual.
        assert (await enroll("C02E2E00002")).ok
        # A refusal by policy after a valid attestation is not a failed validation.
        for _ in range(3):
            refused = await enroll("C02NOGROUP")
            assert refused.problem is not None and refused.problem.kind != "rateLimited"


async def test_forged_statements_naming_a_device_never_lock_the_real_device_out(
    tmp_path: Path, attestation_ca: AttestationCA, database_url: str
) -> None:
    """Anyone can send a statement naming a managed serial: a failure Apple's chain does not
    prove was that device's counts against the sender's account for that serial, not the
    device (else an attacker who knows a serial locks the device out)."""
    files = gateway_config(
        tmp_path / "gw",
        attestation_ca,
        overrides=limits(failed_validations_per_device={"limit": 2, "period": "1h"}),
    )
    serial = "C02E2E00001"

    def device(mode: DeviceMode = DeviceMode.GENUINE) -> SimulatedDevice:
        return SimulatedDevice(
            files.directory_url, serial, LeafClaims.macos(serial), attestation_ca, mode=mode
        )

    async with running_gateway(files, database_url):
        # Five attackers (five accounts), each failing with a chain Apple did not sign.
        for _ in range(5):
            forger = device(DeviceMode.WRONG_ROOT)
            try:
                failed = await forger.enroll()
            finally:
                await forger.close()
            assert failed.problem is not None
            assert failed.problem.kind == "badAttestationStatement"
        # One attacker's account that keeps trying is stopped for that serial.
        forger = device(DeviceMode.WRONG_ROOT)
        try:
            for _ in range(2):
                failed = await forger.enroll()
                assert failed.problem is not None
                assert failed.problem.kind == "badAttestationStatement"
            stopped = await forger.enroll()
        finally:
            await forger.close()
        assert stopped.problem is not None and stopped.problem.kind == "rateLimited"
        assert serial in stopped.problem.detail
        # The real device, with its own account, is not locked out.
        real = device()
        try:
            enrolled = await real.enroll()
        finally:
            await real.close()
        assert enrolled.ok, enrolled.problem


@pytest.mark.parametrize(
    "on",
    [
        {},
        {"new_orders_per_account": {"limit": 5}},
        {"failed_validations_per_device": {"limit": 5}},
    ],
    ids=["all-off", "orders-only", "devices-only"],
)
async def test_any_combination_of_limits_leaves_the_protocol_as_it_was(
    tmp_path: Path, attestation_ca: AttestationCA, database_url: str, on: dict[str, Any]
) -> None:
    files = gateway_config(tmp_path / "gw", attestation_ca, overrides=limits(**on))
    async with running_gateway(files, database_url), AcmeSession(files.directory_url) as acme:
        await acme.new_account()
        # The first order reads the account, the next ones use its cached key (db/gate.py).
        for _ in range(3):
            assert (await order_for(acme, "C02E2E00001")).status == 201
        for mode in (DeviceMode.GENUINE, DeviceMode.WRONG_TOKEN_HASH):
            device = SimulatedDevice(
                files.directory_url,
                "C02E2E00002",
                LeafClaims.macos("C02E2E00002"),
                attestation_ca,
                mode=mode,
            )
            try:
                result = await device.enroll()
            finally:
                await device.close()
            assert result.ok is (mode is DeviceMode.GENUINE), result.problems
