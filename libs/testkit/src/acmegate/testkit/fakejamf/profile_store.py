"""The Classic API configuration profiles a fake Jamf Pro keeps (served by classic_profiles.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from acmegate.testkit.fakejamf.inventory import Group

ProfileKind = Literal["osx", "mobiledevice"]


@dataclass
class StoredProfile:
    """One configuration profile as Jamf keeps it."""

    id: int
    name: str
    description: str = ""
    payloads: str = ""
    level: str = "System"
    distribution_method: str = "Install Automatically"
    redeploy_on_update: str = "Newly Assigned"
    groups: list[Group] = field(default_factory=list)
    all_devices: bool = False
    updates: int = 0


@dataclass
class ProfileStore:
    """The profiles of both kinds, by id."""

    profiles: dict[ProfileKind, dict[int, StoredProfile]] = field(
        default_factory=lambda: {"osx": {}, "mobiledevice": {}}
    )
    next_id: int = 1

    def by_name(self, kind: ProfileKind, name: str) -> StoredProfile | None:
        return next((p for p in self.profiles[kind].values() if p.name == name), None)
