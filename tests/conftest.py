"""Fixtures shared by every tier: real PostgreSQL databases and real RabbitMQ namespaces."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import asyncpg
import pytest

from acmegate.common.bus import Queue, RpcQueue
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


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextlib.asynccontextmanager
async def fresh_database(postgres_url: str) -> AsyncIterator[str]:
    """A new, empty database on the server of ``postgres_url``, dropped afterwards."""
    name = f"acmegate_t_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield _with_database(postgres_url, name)
    finally:
        admin = await asyncpg.connect(postgres_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


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
    connection = await aio_pika.connect(amqp_server_url)
    try:
        channel = await connection.channel()
        for queue in Queue:
            for suffix in ("", ".dead"):
                await channel.queue_delete(f"{namespace}.{queue}{suffix}")
        for rpc_queue in RpcQueue:
            await channel.queue_delete(f"{namespace}.{rpc_queue}")
        await channel.exchange_delete(f"{namespace}.dead-letter")
        await channel.exchange_delete(f"{namespace}.notify")
    finally:
        await connection.close()
