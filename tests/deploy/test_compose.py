"""docker-compose.yml and deploy/compose/: the production shape, least privilege, and the
one-time init step run the way the README of deploy/compose tells an operator to.

Compose itself runs here as podman-compose. The machine's Podman (4.3) cannot wait for health
conditions, so `up` is not what this tests: the init service and the services' own container
definitions (their mounts, secrets and user) are, with `podman-compose run`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from acmegate.cli.compose import SERVICE_NAMES
from acmegate.common.config import load_config
from tests.deploy.podman import ROOT

COMPOSE = ROOT / "docker-compose.yml"
# Who may read what: the services' secrets, as in deploy/k8s.
EXPECTED_SECRETS = {
    "frontend": {"database-url", "amqp-url", "admin-token"},
    "attestation": {"amqp-url"},
    "policy": {"database-url", "amqp-url", "radius-token"},
    "signer": {"database-url", "amqp-url", "ca-passphrase"},
    "migrate": {"database-url"},
}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def test_each_service_gets_only_its_secrets_and_runs_hardened() -> None:
    services = compose()["services"]
    for name, expected in EXPECTED_SECRETS.items():
        service = services[name]
        assert set(service.get("secrets", [])) == expected, name
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"], name
    for name in SERVICE_NAMES:
        assert services[name]["command"][:2] == ["run", name]
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
    # Only the signer mounts the CA key.
    key_mounts = [
        n for n, s in services.items() if any("devices.key" in v for v in s.get("volumes", []))
    ]
    assert key_mounts == ["signer"]


def test_the_configuration_is_the_production_shape() -> None:
    config = load_config(ROOT / "deploy/compose/acmegate.yaml")
    assert all(not provider.roots for provider in config.attestation_providers)
    assert not config.dev.bootstrap
    assert config.admin.token is not None and config.admin.token.file == "/run/secrets/admin-token"


def test_every_file_compose_mounts_is_in_the_repository_or_made_by_init() -> None:
    init = (ROOT / "deploy/compose/init.sh").read_text()
    data = compose()
    sources = [spec["file"] for spec in data["secrets"].values()]
    for service in data["services"].values():
        sources += [v.split(":")[0] for v in service.get("volumes", []) if v.startswith("./")]
    for source in sources:
        path = ROOT / source
        if path.exists():
            continue
        folder, name = path.parent.name, path.name
        assert folder in ("secrets", "ca") and path.parent.parent == ROOT / "deploy/compose", source
        assert name in init or folder == "ca", f"{source}: init.sh does not create it"


@pytest.fixture
def checkout(image: str, tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A copy of the repository's compose files, and the environment to run Compose in it."""
    folder = tmp_path / "checkout"
    shutil.copytree(ROOT / "deploy/compose", folder / "deploy/compose")
    shutil.copy(COMPOSE, folder / "docker-compose.yml")
    env = {**os.environ, "ACMEGATE_IMAGE": image, "COMPOSE_PROJECT_NAME": f"acmegate{image[-8:]}"}
    yield folder, env
    podman_compose(folder, env, "down", check=False)


def podman_compose(
    folder: Path, env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "podman_compose", *args],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if check:
        assert done.returncode == 0, (
            f"podman-compose {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        )
    return done


def test_init_creates_the_ca_and_secrets_that_the_services_can_read(
    checkout: tuple[Path, dict[str, str]],
) -> None:
    folder, env = checkout
    done = podman_compose(folder, env, "--profile", "init", "run", "--rm", "init")
    assert "init: done" in done.stdout, done.stdout + done.stderr
    secrets = folder / "deploy/compose/secrets"
    ca = folder / "deploy/compose/ca"
    assert {p.name for p in secrets.iterdir()} >= set(compose()["secrets"]) | {"rabbitmq.conf"}
    for path in [*secrets.iterdir(), *ca.iterdir()]:
        status = path.stat()
        assert (status.st_uid, status.st_gid) == (10001, 10001), path
        if path.suffix == ".pem":
            assert status.st_mode & 0o777 == 0o444, path
        elif path.name != "rabbitmq.conf":
            assert status.st_mode & 0o777 == 0o400, path
    assert secrets.stat().st_mode & 0o777 == 0o700
    token = (secrets / "admin-token").read_text()

    # Run again: nothing is replaced.
    podman_compose(folder, env, "--profile", "init", "run", "--rm", "init")
    assert (secrets / "admin-token").read_text() == token

    # As the services run (uid 10001, their mounts and secrets): the signer loads its CA key
    # with the passphrase; the frontend reads the admin token.
    checked = podman_compose(
        folder, env, "run", "--rm", "--no-deps", "signer",
        "config", "check", "--config", "/etc/acmegate/acmegate.yaml",
    )  # fmt: skip
    assert "OK" in checked.stdout, checked.stdout + checked.stderr
    read = podman_compose(
        folder, env, "run", "--rm", "--no-deps", "--entrypoint", "cat", "frontend",
        "/run/secrets/admin-token",
    )  # fmt: skip
    assert read.stdout.strip() == token.strip()
