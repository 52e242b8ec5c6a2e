"""Where the tests find PostgreSQL and RabbitMQ.

In order: the URL in ``ACMEGATE_TEST_DATABASE_URL`` / ``ACMEGATE_TEST_AMQP_URL``; else a
testcontainers container when a Docker engine (or Podman's Docker-compatible API, through
``DOCKER_HOST``) answers; else the machine's local services (127.0.0.1:5432 database ``test``,
127.0.0.1:5672 guest/guest), as on CI.

The container images are the official ones unless ``ACMEGATE_TEST_POSTGRES_IMAGE`` /
``ACMEGATE_TEST_RABBITMQ_IMAGE`` name others that honour the same environment variables, such
as the stand-ins ``deploy/podman/setup.sh`` builds from Debian packages where no registry is
reachable. ``ACMEGATE_TEST_CONTAINERS=off`` skips the container step; ``=require`` makes a
missing engine an error instead of a fall-back (CI, to prove this path runs).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

LOCAL_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
LOCAL_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
POSTGRES_IMAGE = "postgres:16-alpine"
RABBITMQ_IMAGE = "rabbitmq:3.13-alpine"


def postgres_image() -> str:
    """The PostgreSQL image testcontainers starts (the official one unless configured)."""
    return os.environ.get("ACMEGATE_TEST_POSTGRES_IMAGE") or POSTGRES_IMAGE


def rabbitmq_image() -> str:
    """The RabbitMQ image testcontainers starts (the official one unless configured)."""
    return os.environ.get("ACMEGATE_TEST_RABBITMQ_IMAGE") or RABBITMQ_IMAGE


def containers_available() -> bool:
    """Whether a Docker-compatible engine answers (never when ACMEGATE_TEST_CONTAINERS=off)."""
    mode = os.environ.get("ACMEGATE_TEST_CONTAINERS")
    if mode == "off":
        return False
    try:
        import docker  # type: ignore[import-untyped]
        from docker.errors import DockerException  # type: ignore[import-untyped]

        docker.from_env(timeout=2).ping()
    except (ImportError, DockerException, OSError) as exc:
        if mode == "require":
            raise RuntimeError(f"ACMEGATE_TEST_CONTAINERS=require, but no engine: {exc}") from exc
        return False
    return True


@contextlib.contextmanager
def postgres_server_url() -> Iterator[str]:
    """A URL of a PostgreSQL server the tests may create databases on."""
    url = os.environ.get("ACMEGATE_TEST_DATABASE_URL")
    if url:
        yield url
        return
    if containers_available():
        from testcontainers.community.postgres import PostgresContainer

        with PostgresContainer(postgres_image(), driver=None) as container:
            yield container.get_connection_url()
        return
    yield LOCAL_DATABASE_URL


@contextlib.contextmanager
def rabbitmq_url() -> Iterator[str]:
    """An AMQP URL of a RabbitMQ broker the tests may create queues on."""
    url = os.environ.get("ACMEGATE_TEST_AMQP_URL")
    if url:
        yield url
        return
    if containers_available():
        from testcontainers.community.rabbitmq import RabbitMqContainer

        with RabbitMqContainer(rabbitmq_image()) as container:
            params = container.get_connection_params()
            yield (
                f"amqp://{params.credentials.username}:{params.credentials.password}"
                f"@{params.host}:{params.port}/"
            )
        return
    yield LOCAL_AMQP_URL
