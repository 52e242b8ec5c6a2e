"""Build a signal source from its configuration, dispatching on the config type."""

from __future__ import annotations

from acmegate.common.config.model import JamfSourceConfig, SignalSourceConfig, StaticSourceConfig
from acmegate.policy.sources.base import SignalSource
from acmegate.policy.sources.jamf import JamfSource
from acmegate.policy.sources.static import StaticSource


class UnsupportedSource(Exception):
    """A configured signal source type this version cannot build yet."""


def build_source(config: SignalSourceConfig) -> SignalSource:
    """The :class:`SignalSource` for ``config``.

    Raises :class:`~acmegate.policy.sources.static.InventoryError` for a broken static
    inventory, ``OSError``/``ssl.SSLError`` for an unreadable Jamf ``ca_bundle`` (both are
    checked by ``validate_config`` first) and :class:`UnsupportedSource` for an unknown type.
    A Jamf source connects on first use, not here.
    """
    if isinstance(config, StaticSourceConfig):
        return StaticSource(config)
    if isinstance(config, JamfSourceConfig):
        return JamfSource(config)
    raise UnsupportedSource(f"signal source of unknown type {type(config).__name__}")
