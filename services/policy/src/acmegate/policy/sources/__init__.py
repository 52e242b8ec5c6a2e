"""Signal sources: where the policy engine learns whether a device exists and is managed."""

from acmegate.policy.sources.base import (
    DeviceKind,
    DeviceRecord,
    IdentityKind,
    SignalSource,
    SourceUnavailable,
    ValidationReport,
)
from acmegate.policy.sources.factory import UnsupportedSource, build_source
from acmegate.policy.sources.static import InventoryError, StaticSource

__all__ = [
    "DeviceKind",
    "DeviceRecord",
    "IdentityKind",
    "InventoryError",
    "SignalSource",
    "SourceUnavailable",
    "StaticSource",
    "UnsupportedSource",
    "ValidationReport",
    "build_source",
]
