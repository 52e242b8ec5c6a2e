"""What every signal source offers: look a device up, validate the connection, close.

A signal source is the guide's "Core Platform" / "Identity Lookup Provider": the static
inventory now, Jamf Pro later (docs/jamf.md §8). The policy engine sees only
:class:`SignalSource`, so a Jamf client plugs in without touching the engine.

Two outcomes must stay apart (docs/jamf.md §8.5): a device the source does not know is an
answer (``None``), while a source that cannot answer raises :class:`SourceUnavailable`, which
the service turns into a redelivery rather than a refusal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

IdentityKind = Literal["serial_number", "udid", "dns_name"]
# Jamf's two inventories: a serial may be a Mac's or an iPhone's (docs/jamf.md §8.3, §8.4).
DeviceKind = Literal["computer", "mobile_device"]


@dataclass(frozen=True)
class DeviceRecord:
    """What a source knows of one device.

    ``managed`` is a flag of its own because an MDM keeps the record of a device it no longer
    manages (docs/jamf.md §8.5: a policy must check the flag, not just that the device exists).
    ``groups`` holds the group names the source reports (for Jamf: only the configured ones).
    ``problem`` says why a source that found the device cannot vouch for it (two Jamf records
    with one serial: ambiguous); such a record is never ``managed``. ``from_cache`` marks an
    answer served from the source's cache: a refusal is never based on one (see engine.py).
    ``identifiers_ignore_case`` says how the source compares serial numbers and UDIDs: Jamf
    Pro ignores case (docs/jamf.md §8.3), the static inventory does not.
    """

    serial_number: str | None
    udid: str | None
    managed: bool
    attributes: Mapping[str, str] = field(default_factory=dict)
    groups: Sequence[str] = ()
    platform: str | None = None
    problem: str | None = None
    from_cache: bool = False
    identifiers_ignore_case: bool = False

    @property
    def passes(self) -> bool:
        """Known, managed and unambiguous: what a source may cache (and a re-check keeps)."""
        return self.managed and self.problem is None

    def identifies(self, serial_number: str | None, udid: str | None) -> bool:
        """Whether this is the record of the device with ``serial_number`` or ``udid``,
        compared as the source compares them."""
        return _same(self.serial_number, serial_number, self.identifiers_ignore_case) or _same(
            self.udid, udid, self.identifiers_ignore_case
        )


def _same(ours: str | None, theirs: str | None, ignore_case: bool) -> bool:
    if not ours or not theirs:
        return False
    return ours.casefold() == theirs.casefold() if ignore_case else ours == theirs


class SourceUnavailable(Exception):
    """The source could not answer (Jamf down, inventory file unreadable): retry later."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"signal source {source!r} is unavailable: {reason}")
        self.source = source
        self.reason = reason


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of the guide's "Validate" button on a signal source."""

    source: str
    ok: bool
    detail: str


class SignalSource(Protocol):
    """A place that knows which devices exist, whether they are managed, and their groups."""

    name: str

    async def lookup(
        self,
        identity: str,
        kind: IdentityKind,
        *,
        fresh: bool = False,
        likely: DeviceKind | None = None,
    ) -> DeviceRecord | None:
        """The device whose ``kind`` is ``identity``, or ``None`` if the source has none.

        ``fresh`` bypasses any cache (revoke-on-failure re-checks, RADIUS); ``likely`` is the
        inventory to ask first when the source keeps several (the attestation tells a Mac
        from an iPhone). Raises :class:`SourceUnavailable` when the source cannot answer.
        """

    async def validate(self) -> ValidationReport:
        """Check the connection/configuration and say what was found."""

    async def close(self) -> None:
        """Release connections and files."""
