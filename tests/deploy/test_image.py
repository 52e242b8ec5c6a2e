"""The container image as `docker build .` / `podman build .` makes it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.deploy.podman import BASE_IMAGE, ROOT, RUN_ID, podman

pytestmark = [pytest.mark.slow]

DEV_ONLY = ["pytest", "playwright", "pgserver", "acmegate.testkit", "testcontainers", "hypothesis"]


def config_of(image: str) -> dict[str, object]:
    config: dict[str, object] = json.loads(podman("image", "inspect", image).stdout)[0]["Config"]
    return config


def test_the_image_runs_acmegate_as_a_non_root_user_on_a_read_only_filesystem(image: str) -> None:
    config = config_of(image)
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["acmegate"]
    exposed = set(config["ExposedPorts"])  # type: ignore[arg-type]
    # ACME, admin, RADIUS, PKI (CRL/OCSP), health probes.
    assert exposed == {"8443/tcp", "9443/tcp", "8081/tcp", "8088/tcp", "8080/tcp"}
    done = podman(
        "run", "--rm", "--read-only", "--cap-drop", "ALL", "--network", "host", image, "--help"
    )
    assert "usage: acmegate" in done.stdout
    whoami = podman("run", "--rm", "--entrypoint", "id", image, "-u")
    assert whoami.stdout.strip() == "10001"


def test_the_image_has_a_healthcheck_on_readiness(image: str) -> None:
    inspected = json.loads(podman("image", "inspect", image).stdout)[0]
    # Podman spells the key either way, depending on how the image was stored.
    health = inspected.get("Healthcheck") or inspected.get("HealthCheck")
    assert health, "no HEALTHCHECK in the image"
    assert "/readyz" in " ".join(health["Test"])
    # Longer than the 2 s database check behind /readyz (nanoseconds).
    assert health["Timeout"] > 2_000_000_000


def test_only_runtime_packages_are_installed(image: str) -> None:
    probe = (
        "import importlib.util, json; "
        f"print(json.dumps([m for m in {DEV_ONLY!r} if importlib.util.find_spec(m)]))"
    )
    done = podman("run", "--rm", "--entrypoint", "python", image, "-c", probe)
    assert json.loads(done.stdout) == []
    services = "import acmegate.frontend, acmegate.attestation, acmegate.policy, acmegate.signer"
    podman("run", "--rm", "--entrypoint", "python", image, "-c", services)


def test_the_image_adds_little_to_its_base(image: str) -> None:
    size = int(podman("image", "inspect", "--format", "{{.Size}}", image).stdout)
    base = int(podman("image", "inspect", "--format", "{{.Size}}", BASE_IMAGE).stdout)
    # The virtualenv is ~80 MB; tests, Playwright and pgserver made it ~290 MB.
    assert size - base < 120_000_000, f"{(size - base) / 1e6:.0f} MB over {BASE_IMAGE}"


def test_a_development_command_names_the_missing_extra(image: str) -> None:
    done = podman(
        "run", "--rm", "--network", "host", image, "simulate-device",
        "--directory", "http://127.0.0.1:1/acme/directory", "--serial", "C02X",
        "--attestation-ca", "/tmp",
        check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "acmegate-cli[dev]" in done.stderr and "Traceback" not in done.stderr


def test_the_build_context_leaves_out_keys_tokens_and_the_virtualenv(
    podman_ready: None, tmp_path: Path
) -> None:
    # A checkout as a developer has it: a dev CA and admin token, a virtualenv, compose secrets.
    checkout = tmp_path / "checkout"
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    for name in files:
        if (ROOT / name).is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            (checkout / name).write_bytes((ROOT / name).read_bytes())
    planted = [
        "var/dev/ca/devices.key",
        "var/dev/admin-token",
        ".venv/bin/python",
        ".git/config",
        "deploy/compose/secrets/admin-token",
        "services/signer/src/acmegate/signer/__pycache__/x.pyc",
    ]
    for name in planted:
        (checkout / name).parent.mkdir(parents=True, exist_ok=True)
        (checkout / name).write_text("secret\n")
    listing = tmp_path / "Containerfile"
    listing.write_text(f"FROM {BASE_IMAGE}\nCOPY . /context\nRUN cd /context && find . -type f\n")
    tag = f"localhost/acmegate-context:{RUN_ID}"
    built = podman("build", "--no-cache", "-f", str(listing), "-t", tag, str(checkout))
    podman("rmi", "--force", tag, check=False)
    sent = {line.strip().removeprefix("./") for line in built.stdout.splitlines()}
    assert not sent.intersection(planted), sent.intersection(planted)
    assert {"uv.lock", "cli/pyproject.toml", "tests/pyproject.toml"} <= sent
    assert "services/signer/src/acmegate/signer/service.py" in sent
