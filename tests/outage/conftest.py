"""The outage tier (issue #12): each test stops a private PostgreSQL or RabbitMQ instance under
load. Slow (minutes), so it runs only when selected with ``-m outage`` (CI: its own step with a
time limit, ``.ci/run``); the instances are private, never the shared ones."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.private import PrivatePostgres, PrivateRabbit, private_instances_available


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "outage" in (config.option.markexpr or ""):
        return
    keep = [item for item in items if item.get_closest_marker("outage") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    if not private_instances_available():
        pytest.fail("the outage tier needs PostgreSQL's initdb/pg_ctl and rabbitmq-server")
    instance = PrivatePostgres.create()
    try:
        yield instance
    finally:
        instance.remove()


@pytest.fixture
def private_rabbit() -> Iterator[PrivateRabbit]:
    if not private_instances_available():
        pytest.fail("the outage tier needs PostgreSQL's initdb/pg_ctl and rabbitmq-server")
    instance = PrivateRabbit.create()
    try:
        yield instance
    finally:
        instance.remove()
