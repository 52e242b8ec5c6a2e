"""The four services as separate processes over the machine's real RabbitMQ and PostgreSQL,
and what happens to in-flight work when one of them dies."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
import yaml

from acmegate.common.ids import b64url
from acmegate.testkit.acme_session import AcmeSession
from acmegate.testkit.apple_ca import AttestationCA
from tests.e2e.test_protocol import csr_der, ready_order
from tests.support.gateway import (
    GatewayFiles,
    distributed_gateway,
    enroll,
    free_port,
    gateway_config,
    issued_and_delivered,
    start_service,
    stop_service,
)
from tests.support.openssl import verify_client_chain

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SERIALS = ["C02E2E00001", "C02E2E00002", "DMQE2EPHONE"]


@pytest.fixture
def files(tmp_path: Path, attestation_ca: AttestationCA, bus_namespace: str) -> GatewayFiles:
    return gateway_config(tmp_path / "gateway", attestation_ca, namespace=bus_namespace)


def env(database_url: str, amqp_url: str) -> dict[str, str]:
    return {"ACMEGATE_DATABASE_URL": database_url, "ACMEGATE_AMQP_URL": amqp_url}


async def test_a_device_enrolls_through_four_processes_over_rabbitmq(
    files: GatewayFiles,
    attestation_ca: AttestationCA,
    database_url: str,
    amqp_server_url: str,
    tmp_path: Path,
) -> None:
    async with distributed_gateway(files, database_url, amqp_server_url):
        result = await enroll(files, attestation_ca, "C02E2E00001")
    assert result.ok, result.problems
    assert result.certificate_chain_pem is not None
    verified = await asyncio.to_thread(
        verify_client_chain, files.root_pem, result.certificate_chain_pem, tmp_path
    )
    assert verified.endswith("OK"), verified


async def test_orders_wait_for_a_signer_that_was_down_and_are_signed_once(
    files: GatewayFiles, attestation_ca: AttestationCA, database_url: str, amqp_server_url: str
) -> None:
    async with distributed_gateway(files, database_url, amqp_server_url) as services:
        await stop_service(*services.pop("signer"), kill=True)
        pending = [asyncio.create_task(enroll(files, attestation_ca, s)) for s in SERIALS]
        await asyncio.sleep(3)
        assert not any(task.done() for task in pending), "nothing can finish without a signer"
        services["signer"] = await start_service(
            "signer", files, env(database_url, amqp_server_url)
        )
        results = await asyncio.gather(*pending)
    assert all(r.ok for r in results), [r.problems for r in results]
    assert await issued_and_delivered(database_url) == (len(SERIALS), len(SERIALS))


async def test_a_signer_killed_mid_stream_loses_and_duplicates_nothing(
    files: GatewayFiles, attestation_ca: AttestationCA, database_url: str, amqp_server_url: str
) -> None:
    serials = SERIALS * 10
    async with distributed_gateway(files, database_url, amqp_server_url) as services:
        pending = [asyncio.create_task(enroll(files, attestation_ca, s)) for s in serials]
        # Kill the signer once it has signed some of the orders but not all of them.
        for _ in range(600):
            issued, _ = await issued_and_delivered(database_url)
            if issued:
                break
            await asyncio.sleep(0.02)
        await stop_service(*services.pop("signer"), kill=True)
        issued_before_crash, _ = await issued_and_delivered(database_url)
        assert 0 < issued_before_crash < len(serials)
        services["signer"] = await start_service(
            "signer", files, env(database_url, amqp_server_url)
        )
        results = await asyncio.gather(*pending)
    assert all(r.ok for r in results), [r.problems for r in results if not r.ok]
    assert await issued_and_delivered(database_url) == (len(serials), len(serials))


async def test_a_frontend_restart_does_not_lose_an_order_in_processing(
    files: GatewayFiles, attestation_ca: AttestationCA, database_url: str, amqp_server_url: str
) -> None:
    urls = env(database_url, amqp_server_url)
    async with distributed_gateway(files, database_url, amqp_server_url) as services:
        async with AcmeSession(files.directory_url) as acme:
            await acme.new_account()
            order, order_url, key = await ready_order(acme, attestation_ca)
            # With the policy stage down, finalize fences the order into `processing`.
            await stop_service(*services.pop("policy"))
            answered = await acme.post(
                order["finalize"], {"csr": b64url(csr_der(key, "C02E2E00001"))}
            )
            assert answered.json_object()["status"] == "processing"
            assert answered.retry_after() is not None
            # The frontend dies; the finalize message waits in RabbitMQ.
            await stop_service(*services.pop("frontend"), kill=True)
            services["policy"] = await start_service("policy", files, urls)
            services["frontend"] = await start_service("frontend", files, urls)
            final = await acme.poll(order_url, max_seconds=30)
            assert final.json_object()["status"] == "valid"
            chain = await acme.post_as_get(final.json_object()["certificate"])
            assert "BEGIN CERTIFICATE" in chain.text
    assert await issued_and_delivered(database_url) == (1, 1)


async def test_a_service_process_answers_health_and_readiness_probes(
    files: GatewayFiles, database_url: str, amqp_server_url: str
) -> None:
    port = free_port()
    proc, pump = await start_service(
        "signer",
        files,
        env(database_url, amqp_server_url),
        extra=["--health-port", str(port), "--health-host", "127.0.0.1"],
    )
    try:
        async with aiohttp.ClientSession() as http:
            for path in ("/healthz", "/readyz"):
                async with http.get(f"http://127.0.0.1:{port}{path}") as response:
                    assert response.status == 200, await response.text()
    finally:
        await stop_service(proc, pump)


async def test_attestation_runs_without_a_database_secret(
    files: GatewayFiles, amqp_server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its deployments give attestation only the broker URL; the configuration still names
    # ACMEGATE_DATABASE_URL for the other services.
    config = yaml.safe_load(files.config_path.read_text())
    config["database"] = {"url": {"env": "ACMEGATE_DATABASE_URL"}}
    files.config_path.write_text(yaml.safe_dump(config))
    monkeypatch.delenv("ACMEGATE_DATABASE_URL", raising=False)
    proc, pump = await start_service("attestation", files, {"ACMEGATE_AMQP_URL": amqp_server_url})
    try:
        assert proc.process.returncode is None, "\n".join(proc.output)
    finally:
        await stop_service(proc, pump)
