"""Where the tests find PostgreSQL and RabbitMQ.

In order: the URL in ``ACMEGATE_TEST_DATABASE_URL`` / ``ACMEGATE_TEST_AMQP_URL``; else a
testcontainers container when a Docker engine answers; else the machine's local services
(127.0.0.1:5432 database ``test``, 127.0.0.1:5672 guest/guest), as on CI.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

LOCAL_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
LOCAL_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def _docker_available() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def postgres_server_url() -> Iterator[str]:
    """A URL of a PostgreSQL server the tests may create databases on."""
    url = os.environ.get("ACMEGATE_TEST_DATABASE_URL")
    if url:
        yield url
        return
    if _docker_available():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as container:
            yield container.get_connection_url()
        return
    yield LOCAL_DATABASE_URL


@contextlib.contextmanager
def rabbitmq_url() -> Iterator[str]:
    url = os.environ.get("ACMEGATE_TEST_AMQP_URL")
    if url:
        yield url
        return
    if _docker_available():
        from testcontainers.rabbitmq import RabbitMqContainer

        with RabbitMqContainer("rabbitmq:3.13-alpine") as container:
            params = container.get_connection_params()
            yield (
                f"amqp://{params.credentials.username}:{params.credentials.password}"
                f"@{params.host}:{params.port}/"
            )
        return
    yield LOCAL_AMQP_URL
