"""Starting a service as an operator does, when something is wrong: one clear line, a non-zero
exit code, never a traceback; and PostgreSQL that comes up late is waited for."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from acmegate.testkit.apple_ca import AttestationCA
from tests.support.gateway import (
    GatewayFiles,
    free_port,
    gateway_config,
)

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def files(tmp_path: Path, attestation_ca: AttestationCA) -> GatewayFiles:
    return gateway_config(
        tmp_path / "gateway",
        attestation_ca,
        overrides={"startup": {"retry_for": "2s"}, "logging": {"level": "info", "json": True}},
    )


def acmegate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("ACMEGATE_DATABASE_URL", "ACMEGATE_AMQP_URL", "ACMEGATE_HEALTH_PORT")
    }
    return subprocess.run(
        [sys.executable, "-m", "acmegate.cli.main", *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=60,
        check=False,
    )


def one_line(stderr: str) -> str:
    """The message for the person at the terminal: the only stderr line that is not JSON."""
    assert "Traceback" not in stderr, stderr
    plain = [line for line in stderr.splitlines() if line and not line.startswith("{")]
    assert len(plain) == 1, stderr
    for line in stderr.splitlines():
        if line.startswith("{"):
            json.loads(line)  # every log line is JSON (logging.json)
    return plain[0]


def closed_port() -> int:
    return free_port()  # nobody listens on it


def test_version() -> None:
    done = acmegate("--version")
    assert done.returncode == 0
    assert done.stdout.startswith("acmegate ") and done.stdout.strip() != "acmegate unknown"


def test_a_service_with_state_and_no_database_url_says_so(files: GatewayFiles) -> None:
    done = acmegate("run", "signer", "--config", str(files.config_path))
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert "database.url (or ACMEGATE_DATABASE_URL) is required by signer" in line


def test_an_unreachable_database_is_retried_then_reported(files: GatewayFiles) -> None:
    port = closed_port()
    started = time.monotonic()
    done = acmegate(
        "run",
        "signer",
        "--config",
        str(files.config_path),
        env={"ACMEGATE_DATABASE_URL": f"postgresql://postgres:hunter2@127.0.0.1:{port}/x"},
    )
    assert done.returncode == 1
    assert time.monotonic() - started >= 1.5  # startup.retry_for: 2s
    line = one_line(done.stderr)
    assert line.startswith(f"acmegate: PostgreSQL at 127.0.0.1:{port}/x is unreachable")
    assert "startup.retry_for" in line
    waits = [json.loads(x) for x in done.stderr.splitlines() if x.startswith("{")]
    assert any(w["event"] == f"waiting for PostgreSQL at 127.0.0.1:{port}/x" for w in waits)
    assert "hunter2" not in done.stderr


def test_a_database_that_refuses_the_role_is_reported_at_once(
    files: GatewayFiles, postgres_url: str
) -> None:
    url = postgres_url.replace("postgres@", "nobody-here@", 1)
    assert url != postgres_url
    done = acmegate(
        "run", "signer", "--config", str(files.config_path), env={"ACMEGATE_DATABASE_URL": url}
    )
    assert done.returncode == 1
    assert 'role "nobody-here" does not exist' in one_line(done.stderr)


def test_an_unreachable_broker_is_retried_then_reported(files: GatewayFiles) -> None:
    port = closed_port()
    done = acmegate(
        "run",
        "attestation",
        "--config",
        str(files.config_path),
        env={"ACMEGATE_AMQP_URL": f"amqp://guest:guest@127.0.0.1:{port}/"},
    )
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert line.startswith(f"acmegate: RabbitMQ at 127.0.0.1:{port} is unreachable"), line
    events = [json.loads(x) for x in done.stderr.splitlines() if x.startswith("{")]
    # aio-pika's own records come out as JSON with the logger's name too.
    assert any(e.get("logger", "").startswith("aiormq") for e in events), events


def test_refused_broker_credentials_are_reported_at_once(
    files: GatewayFiles, amqp_server_url: str
) -> None:
    url = amqp_server_url.replace("guest:guest@", "guest:not-the-password@", 1)
    assert url != amqp_server_url
    started = time.monotonic()
    done = acmegate(
        "run", "attestation", "--config", str(files.config_path), env={"ACMEGATE_AMQP_URL": url}
    )
    assert done.returncode == 1
    assert time.monotonic() - started < 15
    assert "the broker refused the credentials" in one_line(done.stderr)
    assert "not-the-password" not in done.stderr


def test_a_port_in_use_names_its_configuration_key(
    files: GatewayFiles, database_url: str, amqp_server_url: str, bus_namespace: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", files.port))
        taken.listen()
        done = acmegate(
            "run",
            "frontend",
            "--config",
            str(files.config_path),
            env={"ACMEGATE_DATABASE_URL": database_url, "ACMEGATE_AMQP_URL": amqp_server_url},
        )
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert f"127.0.0.1:{files.port} (server.port)" in line and "already in use" in line, line


def test_a_missing_ca_file_is_one_line(files: GatewayFiles) -> None:
    (files.config_path.parent / "ca" / "devices.pem").unlink()
    done = acmegate("run", "signer", "--config", str(files.config_path))
    assert done.returncode == 2
    line = one_line(done.stderr)
    assert "certificate_authorities[0].certificate" in line and "devices.pem" in line


def test_a_wrong_ca_passphrase_is_one_line(files: GatewayFiles) -> None:
    (files.config_path.parent / "passphrase").write_text("not the passphrase")
    done = acmegate("run", "signer", "--config", str(files.config_path))
    assert done.returncode == 2
    assert "cannot decrypt" in one_line(done.stderr)


class LateDoor:
    """A TCP port that forwards to PostgreSQL only once opened (a database starting late)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._server: asyncio.Server | None = None

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)

        async def copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(copy(reader, upstream_writer), copy(upstream_reader, writer))


@pytest.fixture
async def late_door(database_url: str) -> AsyncIterator[LateDoor]:
    from urllib.parse import urlsplit

    parts = urlsplit(database_url)
    door = LateDoor((parts.hostname or "127.0.0.1", parts.port or 5432))
    try:
        yield door
    finally:
        await door.close()


async def test_a_database_that_starts_late_is_waited_for(
    tmp_path: Path,
    attestation_ca: AttestationCA,
    database_url: str,
    amqp_server_url: str,
    bus_namespace: str,
    late_door: LateDoor,
) -> None:
    from urllib.parse import urlsplit, urlunsplit

    files = gateway_config(
        tmp_path / "gateway",
        attestation_ca,
        namespace=bus_namespace,
        overrides={"startup": {"retry_for": "60s"}},
    )
    parts = urlsplit(database_url)
    via_door = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{late_door.port}"))
    environment = {
        **os.environ,
        "ACMEGATE_DATABASE_URL": via_door,
        "ACMEGATE_AMQP_URL": amqp_server_url,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "acmegate.cli.main", "run", "signer",
        "--config", str(files.config_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=environment,
    )  # fmt: skip
    assert process.stdout is not None
    lines: list[str] = []

    async def until(text: str) -> None:
        assert process.stdout is not None
        while text not in (line := (await process.stdout.readline()).decode()):
            assert line, f"the signer ended before {text!r}: {lines}"
            lines.append(line)

    try:
        # The database "starts" only once the service has found it missing and said so.
        await asyncio.wait_for(until("waiting for PostgreSQL"), 45)
        await late_door.open()
        await asyncio.wait_for(until("acmegate signer is running"), 45)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)
    waited = [line for line in lines if "waiting for PostgreSQL" in line]
    assert all(json.loads(line)["level"] == "warning" for line in waited)
    assert "Traceback" not in "".join(lines)
    assert process.returncode == 0


def test_config_check_on_a_fresh_clone_says_what_standalone_will_create(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    shutil.copytree(ROOT / "examples", clone / "examples")
    done = acmegate("config", "check", "--config", str(clone / "examples" / "dev.yaml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"{clone / 'examples' / 'dev.yaml'}: OK")
    assert f"a development CA in {clone / 'var' / 'dev' / 'ca'}" in done.stdout
    assert "a TEST Apple attestation CA in" in done.stdout
    assert "/../" not in done.stdout
    assert not (clone / "var").exists(), "config check must not create anything"


def test_config_check_does_not_call_an_empty_configuration_ok(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    done = acmegate("config", "check", "--config", str(empty))
    assert done.returncode == 1
    assert "OK" not in done.stdout
    assert "certificate_authorities is empty" in done.stdout
    assert "enrollment_policies is empty: every enrollment is refused" in done.stdout
