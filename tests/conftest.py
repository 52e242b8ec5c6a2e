"""Fixtures shared by every tier: real PostgreSQL databases and real RabbitMQ namespaces."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.gateway import create_database, delete_bus_namespace, drop_database
from tests.support.infra import postgres_server_url, rabbitmq_url

pytest_plugins = ["tests.support.device_fixtures"]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres_server_url() as url:
        yield url


@pytest.fixture(scope="session")
def amqp_server_url() -> Iterator[str]:
    with rabbitmq_url() as url:
        yield url


@contextlib.asynccontextmanager
async def fresh_database(postgres_url: str) -> AsyncIterator[str]:
    """A new, empty database on the server of ``postgres_url``, dropped afterwards."""
    url = await create_database(postgres_url, "acmegate_t_")
    try:
        yield url
    finally:
        await drop_database(postgres_url, url)


@pytest.fixture
async def database_url(postgres_url: str) -> AsyncIterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    async with fresh_database(postgres_url) as url:
        yield url


@pytest.fixture
async def bus_namespace(amqp_server_url: str) -> AsyncIterator[str]:
    """A private queue namespace on the real broker, deleted afterwards."""
    namespace = f"t{secrets.token_hex(5)}"
    yield namespace
    await delete_bus_namespace(amqp_server_url, namespace)
