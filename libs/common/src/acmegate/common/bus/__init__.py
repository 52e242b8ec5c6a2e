"""The message bus: RabbitMQ (aio-pika) in production, an in-process twin in standalone mode."""

from __future__ import annotations

from acmegate.common.bus.amqp import AmqpBus
from acmegate.common.bus.base import (
    BroadcastHandler,
    Bus,
    Delivery,
    Handler,
    Queue,
    Reject,
    RpcHandler,
    RpcQueue,
    RpcUnavailable,
)
from acmegate.common.bus.inprocess import InProcessBus
from acmegate.common.config import Config, ConfigError
from acmegate.common.config.secrets import env_override

__all__ = [
    "AmqpBus",
    "BroadcastHandler",
    "Bus",
    "Delivery",
    "Handler",
    "InProcessBus",
    "Queue",
    "Reject",
    "RpcHandler",
    "RpcQueue",
    "RpcUnavailable",
    "amqp_url",
    "bus_from_config",
]


def amqp_url(config: Config) -> str | None:
    """The broker URL: ``ACMEGATE_AMQP_URL`` overrides the configuration."""
    return env_override("ACMEGATE_AMQP_URL", config.bus.url)


def bus_from_config(config: Config, *, in_process: bool = False) -> Bus:
    if in_process:
        return InProcessBus(max_deliveries=config.bus.max_deliveries)
    url = amqp_url(config)
    if not url:
        raise ConfigError("bus.url (or ACMEGATE_AMQP_URL) is required outside standalone mode")
    return AmqpBus(url, namespace=config.bus.namespace, max_deliveries=config.bus.max_deliveries)
