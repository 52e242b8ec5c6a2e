"""Private PostgreSQL and RabbitMQ instances for tests that stop and start them (tests/outage):
never the shared ones. Each lives in a temporary directory on its own free ports.

PostgreSQL comes from ``/usr/lib/postgresql/*/bin`` (initdb, pg_ctl; run as the ``postgres``
user when the tests run as root, which initdb refuses); RabbitMQ from the ``rabbitmq-server``
package, with its own node name, ports, data directory, Erlang cookie (``HOME``) and no plugins.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.gateway import free_port


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"no {name} under /usr/lib/postgresql/*/bin")
    return found[-1]


def private_instances_available() -> bool:
    return bool(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")) and bool(
        shutil.which("rabbitmq-server")
    )


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:g}s")


@dataclass
class PrivatePostgres:
    directory: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @classmethod
    def create(cls) -> PrivatePostgres:
        # Its own directory right under the temporary root: the postgres user must reach it.
        directory = Path(tempfile.mkdtemp(prefix="acmegate-pg-"))
        directory.chmod(0o755)
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres", "postgres")
        data = directory / "data"
        subprocess.run(
            _as_postgres(
                [_pg_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-N"]
            ),
            check=True,
            capture_output=True,
        )
        instance = cls(directory, free_port())
        instance.start()
        return instance

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=200"
        )
        subprocess.run(
            _as_postgres(
                [
                    _pg_bin("pg_ctl"),
                    "-D",
                    str(self.directory / "data"),
                    "-o",
                    options,
                    "-l",
                    str(self.directory / "log"),
                    "-w",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )

    def stop(self, mode: str = "immediate") -> None:
        subprocess.run(
            _as_postgres(
                [_pg_bin("pg_ctl"), "-D", str(self.directory / "data"), "-m", mode, "-w", "stop"]
            ),
            check=False,
            capture_output=True,
        )

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class PrivateRabbit:
    directory: Path
    port: int
    dist_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def node(self) -> str:
        return f"acmegate-test-{self.port}@localhost"

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HOME": str(self.directory),  # its own Erlang cookie
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(self.directory / "rabbitmq.conf"),
            "RABBITMQ_MNESIA_BASE": str(self.directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.directory / "log"),
            "RABBITMQ_PID_FILE": str(self.directory / "pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.directory / "enabled_plugins"),
        }

    @classmethod
    def create(cls) -> PrivateRabbit:
        # rabbitmq-server started by root runs as the rabbitmq user: it must own the directory.
        directory = Path(tempfile.mkdtemp(prefix="acmegate-rabbit-"))
        directory.chmod(0o755)
        instance = cls(directory, free_port(), free_port())
        (directory / "enabled_plugins").write_text("[].\n")
        (directory / "rabbitmq.conf").write_text(f"listeners.tcp.1 = 127.0.0.1:{instance.port}\n")
        if os.geteuid() == 0:
            for path in (directory, *directory.iterdir()):
                shutil.chown(path, "rabbitmq", "rabbitmq")
        instance.start()
        return instance

    def start(self, timeout: float = 60) -> None:
        self.process = subprocess.Popen(
            ["rabbitmq-server"],
            env=self._env(),
            cwd="/tmp",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        _wait_port(self.port, timeout)

    def stop(self) -> None:
        """Stop the node (SIGTERM: an orderly broker shutdown); ``start`` brings it back with its
        durable queues."""
        if self.process is None:
            return
        # The wrapper hands the node to the rabbitmq user in its own session: ask the node.
        subprocess.run(
            ["rabbitmqctl", "-n", self.node, "stop"],
            env=self._env(),
            check=False,
            capture_output=True,
            timeout=60,
        )
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None
        # The Erlang VM may outlive the shell wrapper for a moment: wait for the port to close.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.2)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


async def wait_until(predicate: object, timeout: float, interval: float = 0.2) -> float:
    """Poll the async ``predicate`` until true; return the seconds it took."""
    started = time.monotonic()
    while True:
        if await predicate():  # type: ignore[operator]
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"not true after {timeout:g}s")
        await asyncio.sleep(interval)
