"""The deploy tier: the image, Compose and Kubernetes files, run the way operators run them.

The container tests run when Podman can run containers here and are skipped with the reason
otherwise; with ``ACMEGATE_REQUIRE_PODMAN=1`` (CI) a missing Podman is a failure instead.
They use the machine's PostgreSQL and RabbitMQ over the host network, each test with its own
database and bus namespace.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator

import pytest

from tests.deploy.podman import RUN_ID, build_image, podman, unusable_reason


@pytest.fixture(scope="session")
def podman_ready() -> None:
    reason = unusable_reason()
    if reason is None:
        return
    if os.environ.get("ACMEGATE_REQUIRE_PODMAN") == "1":
        pytest.fail(f"ACMEGATE_REQUIRE_PODMAN=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def image(podman_ready: None) -> Iterator[str]:
    """The repository's image, built once per run (Podman's layer cache keeps it quick)."""
    tag = f"localhost/acmegate-test:{RUN_ID}"
    started = time.monotonic()
    build_image(tag)
    print(f"\nbuilt {tag} in {time.monotonic() - started:.0f} s")
    yield tag
    podman("rmi", "--force", tag, check=False)


@pytest.fixture(scope="session")
def kubectl() -> str:
    """kubectl, whose built-in kustomize renders deploy/k8s."""
    found = shutil.which("kubectl")
    if found is None:
        if os.environ.get("ACMEGATE_REQUIRE_PODMAN") == "1":
            pytest.fail("kubectl (with its built-in kustomize) is not installed")
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    return found
