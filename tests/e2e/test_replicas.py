"""Two frontend replicas behind a round-robin balancer, no sticky sessions: nonces are single
use across both, and every enrollment completes whichever replica gets each request."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from acmegate.cli.compose import running
from acmegate.common.bus import AmqpBus
from acmegate.testkit.acme_session import AcmeSession
from acmegate.testkit.apple_ca import AttestationCA, LeafClaims
from acmegate.testkit.device import SimulatedDevice
from tests.support.balancer import replica_configs, round_robin
from tests.support.gateway import gateway_config

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def test_enrollments_complete_across_two_replicas_without_sticky_sessions(
    tmp_path: Path,
    attestation_ca: AttestationCA,
    database_url: str,
    amqp_server_url: str,
    bus_namespace: str,
) -> None:
    files = gateway_config(tmp_path / "gw", attestation_ca, namespace=bus_namespace)
    balancer = files.port  # the external URL every replica writes
    replica_ports, configs = replica_configs(files)

    def bus() -> AmqpBus:
        return AmqpBus(amqp_server_url, namespace=bus_namespace, max_deliveries=4)

    all_services = ["frontend", "attestation", "policy", "signer"]
    async with (
        running(configs[0], all_services, database=database_url, bus=bus()),
        running(configs[1], ["frontend"], database=database_url, bus=bus()),
        round_robin(balancer, replica_ports) as served,
    ):
        # A nonce from one replica is good at the other, and only once.
        async with AcmeSession(files.directory_url) as acme:
            await acme.new_account()
            url = await acme.url_of("newOrder")
            nonce = await acme.new_nonce()
            body = acme.sign(
                url,
                {"identifiers": [{"type": "permanent-identifier", "value": "C02E2E00001"}]},
                nonce=nonce,
            )
            assert (await acme.post_raw(url, body)).status == 201
            replay = await acme.post_raw(url, body)
            assert replay.problem() is not None and replay.problem().kind == "badNonce"

        # Every request on a new connection: each goes to the other replica than the last.
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as http:
            serials = ["C02E2E00001", "C02E2E00002", "DMQE2EPHONE"] * 2

            async def enroll(serial: str) -> bool:
                device = SimulatedDevice(
                    files.directory_url,
                    serial,
                    LeafClaims.macos(serial),
                    attestation_ca,
                    session=http,
                )
                result = await device.enroll()
                return result.ok

            assert all(await asyncio.gather(*(enroll(s) for s in serials)))
    assert served[replica_ports[0]] > 10 and served[replica_ports[1]] > 10
