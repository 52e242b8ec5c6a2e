"""`acmegate migrate` and the four services as containers of the image, against the machine's
PostgreSQL and RabbitMQ (host network, this test's own database and bus namespace): a simulated
device enrolls through them, and a crashed signer container is restarted and finishes the work."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from acmegate.testkit.apple_ca import AttestationCA
from tests.deploy.podman import (
    RUN_ID,
    inspect,
    podman,
    readable_by_image_user,
    remove_containers,
    wait_http,
)
from tests.support.gateway import (
    GatewayFiles,
    enroll,
    free_port,
    gateway_config,
    issued_and_delivered,
)
from tests.support.openssl import verify_client_chain

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SERIALS = ["C02E2E00001", "C02E2E00002", "DMQE2EPHONE"]
# What each service needs from the environment, as in docker-compose.yml and deploy/k8s.
NEEDS_DATABASE = {"frontend", "policy", "signer"}


@dataclass
class Deployment:
    files: GatewayFiles
    database_url: str
    containers: dict[str, str]
    health_ports: dict[str, int]


def run_service(image: str, name: str, folder: Path, env: dict[str, str], health_port: int) -> str:
    """One service container, hardened as the deployment files run it; its container name."""
    container = f"acmegate-{name}-{RUN_ID}"
    flags = [f"--env={key}={value}" for key, value in env.items()]
    podman(
        "run", "--detach", "--name", container, "--network", "host",
        "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--restart", "on-failure",
        "--volume", f"{folder}:/etc/acmegate:ro",
        f"--env=ACMEGATE_HEALTH_PORT={health_port}", *flags,
        image, "run", name, "--config", "/etc/acmegate/acmegate.yaml",
    )  # fmt: skip
    return container


@pytest.fixture
def deployment(
    image: str,
    tmp_path: Path,
    attestation_ca: AttestationCA,
    bus_namespace: str,
    database_url: str,
    amqp_server_url: str,
) -> Iterator[Deployment]:
    files = gateway_config(tmp_path / "gateway", attestation_ca, namespace=bus_namespace)
    # The configuration's relative paths resolve inside the mounted folder.
    config = files.config_path.parent
    readable_by_image_user(config)
    # The Kubernetes migrate Job's way: the database URL alone, no configuration.
    migrated = podman(
        "run", "--rm", "--network", "host", "--read-only", "--cap-drop", "ALL",
        f"--env=ACMEGATE_DATABASE_URL={database_url}", image, "migrate",
    )  # fmt: skip
    assert "applied " in migrated.stdout
    containers: dict[str, str] = {}
    ports: dict[str, int] = {}
    try:
        for name in ("signer", "policy", "attestation", "frontend"):
            env = {"ACMEGATE_AMQP_URL": amqp_server_url}
            if name in NEEDS_DATABASE:
                env["ACMEGATE_DATABASE_URL"] = database_url
            ports[name] = free_port()
            containers[name] = run_service(image, name, config, env, ports[name])
        for name, port in ports.items():
            status, body = wait_http(f"http://127.0.0.1:{port}/readyz", timeout=60)
            logs = podman("logs", containers[name], check=False).stderr[-2000:]
            assert status == 200, f"{name} is not ready: {body}\n{logs}"
        yield Deployment(files, database_url, containers, ports)
    finally:
        remove_containers(list(containers.values()))


async def test_a_device_enrolls_through_the_containers_and_openssl_accepts_the_chain(
    deployment: Deployment, attestation_ca: AttestationCA, tmp_path: Path
) -> None:
    result = await enroll(deployment.files, attestation_ca, "C02E2E00001", poll_timeout=90)
    assert result.ok, result.problems
    assert result.certificate_chain_pem is not None
    verified = await asyncio.to_thread(
        verify_client_chain, deployment.files.root_pem, result.certificate_chain_pem, tmp_path
    )
    assert verified.endswith("OK"), verified
    # The image's HEALTHCHECK passes in every service container.
    for container in deployment.containers.values():
        assert podman("healthcheck", "run", container, check=False).returncode == 0, container


async def test_a_crashed_signer_container_is_restarted_and_the_work_finishes_once(
    deployment: Deployment, attestation_ca: AttestationCA
) -> None:
    signer = deployment.containers["signer"]
    pid = int(inspect(signer, "{{.State.Pid}}"))
    serials = SERIALS * 16
    pending = [
        asyncio.create_task(enroll(deployment.files, attestation_ca, serial, poll_timeout=90))
        for serial in serials
    ]
    # Kill the signer's process (as the kernel's OOM killer would) once it signed an order.
    for _ in range(1500):
        issued, _ = await issued_and_delivered(deployment.database_url)
        if issued:
            break
        await asyncio.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    results = await asyncio.gather(*pending)
    assert all(r.ok for r in results), [r.problems for r in results if not r.ok]
    assert int(inspect(signer, "{{.RestartCount}}")) >= 1
    assert int(inspect(signer, "{{.State.Pid}}")) != pid
    health = f"http://127.0.0.1:{deployment.health_ports['signer']}/readyz"
    assert wait_http(health, timeout=30)[0] == 200
    assert await issued_and_delivered(deployment.database_url) == (len(serials), len(serials))
