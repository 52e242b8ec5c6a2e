"""Podman as the deploy tier uses it: whether it is usable here, building the image, running
containers on the host network (where the machine's PostgreSQL and RabbitMQ are), cleaning up.

Everything this tier creates in Podman carries a per-run suffix: Podman's containers, pods,
volumes and secrets are shared by every test run on the machine.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN_ID = secrets.token_hex(4)
# The Dockerfile's default base image; `podman build .` resolves it from local storage first
# (where deploy/podman/setup.sh puts a stand-in when no registry is reachable).
BASE_IMAGE = "python:3.11-slim"
# This sandbox reaches package registries only through a TLS-intercepting proxy whose CA is in
# the host's bundle; the build (only) gets the host's bundle in place of the image's own.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def podman(
    *args: str, check: bool = True, timeout: float = 300, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``podman ARGS``; on failure (with ``check``) raise with its output."""
    done = subprocess.run(
        ["podman", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"podman {' '.join(args[:3])} … exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done


@functools.cache
def unusable_reason() -> str | None:
    """Why the container tier cannot run here, or None when Podman runs containers."""
    if shutil.which("podman") is None:
        return "podman is not installed (deploy/podman/setup.sh installs and prepares it)"
    try:
        info = podman("info", "--format", "{{.Host.OCIRuntime.Name}}", check=False, timeout=60)
        if info.returncode != 0:
            return f"podman does not work here: {info.stderr.strip()[-300:]}"
        if podman("image", "exists", BASE_IMAGE, check=False).returncode != 0:
            pulled = podman("pull", "-q", BASE_IMAGE, check=False, timeout=180)
            if pulled.returncode != 0:
                return (
                    f"no {BASE_IMAGE} image and none can be pulled "
                    "(deploy/podman/setup.sh builds a local stand-in)"
                )
        ran = podman("run", "--rm", "--network", "host", BASE_IMAGE, "true", check=False)
        if ran.returncode != 0:
            return f"podman cannot run a container: {ran.stderr.strip()[-300:]}"
    except subprocess.TimeoutExpired as exc:
        return f"podman did not answer: {exc}"
    return None


def build_image(tag: str, context: Path = ROOT, *extra: str) -> None:
    """``podman build`` of the repository's Dockerfile, as a user would, plus this sandbox's
    host network and CA bundle. ``--format docker`` keeps the HEALTHCHECK (OCI images drop it)."""
    sandbox: list[str] = ["--network", "host"]
    if HOST_CA_BUNDLE.exists():
        sandbox += ["--volume", f"{HOST_CA_BUNDLE}:/etc/ssl/certs/ca-certificates.crt:ro"]
    podman(
        "build",
        "--format",
        "docker",
        "--layers",
        *sandbox,
        *extra,
        "-t",
        tag,
        str(context),
        timeout=900,
    )


def inspect(what: str, template: str) -> str:
    """``podman inspect --format TEMPLATE WHAT``, stripped."""
    return podman("inspect", "--format", template, what).stdout.strip()


def remove_containers(names: Sequence[str]) -> None:
    if names:
        podman("rm", "--force", "--time", "5", *names, check=False, timeout=120)


def wait_http(url: str, *, timeout: float, expect: int = 200) -> tuple[int, str]:
    """Poll ``url`` until it answers ``expect`` or ``timeout`` runs out; the last answer."""
    deadline = time.monotonic() + timeout
    last: tuple[int, str] = (0, "no answer")
    while time.monotonic() < deadline:
        last = http_get(url)
        if last[0] == expect:
            return last
        time.sleep(0.5)
    return last


def http_get(
    url: str, headers: dict[str, str] | None = None, timeout: float = 5
) -> tuple[int, str]:
    """(status, body) of a GET; status 0 when nothing answered."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc)


def readable_by_image_user(folder: Path) -> None:
    """Hand ``folder`` to uid 10001, as an operator does for the files a container mounts
    (as root; otherwise make them readable by anyone, which rootless Podman needs)."""
    for path in [folder, *folder.rglob("*")]:
        if os.geteuid() == 0:
            os.chown(path, 10001, 10001)
        else:
            path.chmod(path.stat().st_mode | 0o444 | (0o111 if path.is_dir() else 0))
