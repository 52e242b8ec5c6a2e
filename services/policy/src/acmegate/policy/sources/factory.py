"""Build a signal source from its configuration, dispatching on the config type."""

from __future__ import annotations

from acmegate.common.config.model import JamfSourceConfig, SignalSourceConfig, StaticSourceConfig
from acmegate.policy.sources.base import SignalSource
from acmegate.policy.sources.static import StaticSource


class UnsupportedSource(Exception):
    """A configured signal source type this version cannot build yet."""


def build_source(config: SignalSourceConfig) -> SignalSource:
    """The :class:`SignalSource` for ``config``.

    Raises :class:`~acmegate.policy.sources.static.InventoryError` for a broken static
    inventory and :class:`UnsupportedSource` for a Jamf Pro source (a later task adds its
    client here: ``JamfSource(config, http_session, clock)``).
    """
    if isinstance(config, StaticSourceConfig):
        return StaticSource(config)
    if isinstance(config, JamfSourceConfig):
        raise UnsupportedSource(
            f"signal source {config.name!r}: Jamf Pro sources are not supported yet"
        )
    raise UnsupportedSource(f"signal source of unknown type {type(config).__name__}")
