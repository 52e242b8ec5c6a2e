"""The static inventory: devices listed in the YAML configuration or in a YAML file of their own.

It lets the gateway run without an MDM. The file (a YAML list with the keys of
:class:`~acmegate.common.config.model.InventoryDevice`) is re-read when it changes, checked by
a ``stat`` per lookup (microseconds) and parsed in a worker thread so a large file never blocks
the event loop. A file that became unreadable or invalid makes the source *unavailable*
(the order is retried, then fails cleanly) rather than silently keeping an inventory the
operator meant to replace: this gateway fails closed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import msgspec
import yaml

from acmegate.common.config.model import InventoryDevice, StaticSourceConfig
from acmegate.policy.sources.base import (
    DeviceKind,
    DeviceRecord,
    IdentityKind,
    SourceUnavailable,
    ValidationReport,
)

# The attribute a static device carries its DNS name in (lookups with identity csr_san_dns).
DNS_NAME_ATTRIBUTE = "dns_name"

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_FileSignature = tuple[int, int, int]


class InventoryError(Exception):
    """The inventory is invalid; the message names the file (if any) and the key.

    ``in_file`` tells whether the problem is in the inventory file (the message then starts
    with its path) or in the configuration's ``devices`` (the message starts ``devices[i]``).
    """

    def __init__(self, message: str, *, in_file: bool = True) -> None:
        super().__init__(message)
        self.in_file = in_file


@dataclass(frozen=True)
class _Inventory:
    by_serial: dict[str, DeviceRecord]
    by_udid: dict[str, DeviceRecord]
    by_dns: dict[str, DeviceRecord]

    @property
    def size(self) -> int:
        return len(self.by_serial)

    @property
    def managed(self) -> int:
        return sum(1 for record in self.by_serial.values() if record.managed)


def read_inventory_file(path: Path) -> list[InventoryDevice]:
    """The devices listed in ``path``; :class:`InventoryError` naming the file and key."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InventoryError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        raw = yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader (C or Python)
    except yaml.YAMLError as exc:
        raise InventoryError(f"{path}: not valid YAML: {exc}") from exc
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InventoryError(f"{path}: the top level must be a list of devices")
    try:
        return msgspec.convert(raw, list[InventoryDevice], strict=True)
    except msgspec.ValidationError as exc:
        detail, _, where = str(exc).rpartition(" - at `")
        if not detail:
            raise InventoryError(f"{path}: {exc}") from exc
        raise InventoryError(f"{path}: {where.rstrip('`')}: {detail}") from exc


@dataclass(frozen=True)
class _DeviceList:
    """Devices and where they were written: ``devices`` of the config, or a file."""

    prefix: str  # "devices" or "<file>: $"
    devices: list[InventoryDevice]
    in_file: bool


def _index(lists: Iterable[_DeviceList]) -> _Inventory:
    """Index devices by serial, UDID and DNS name; a duplicate of any is an error."""
    inventory = _Inventory({}, {}, {})
    where_of: dict[tuple[str, str], str] = {}

    def claim(kind: str, value: str, where: str, in_file: bool) -> None:
        previous = where_of.get((kind, value))
        if previous is not None:
            raise InventoryError(
                f"{where}: duplicate {kind} {value!r} (also at {previous})", in_file=in_file
            )
        where_of[(kind, value)] = where

    for listed in lists:
        for position, device in enumerate(listed.devices):
            where = f"{listed.prefix}[{position}]"
            if not device.serial_number:
                raise InventoryError(
                    f"{where}.serial_number: must not be empty", in_file=listed.in_file
                )
            record = DeviceRecord(
                serial_number=device.serial_number,
                udid=device.udid,
                managed=device.managed,
                attributes=dict(device.attributes),
                groups=tuple(device.groups),
            )
            claim("serial number", device.serial_number, where, listed.in_file)
            inventory.by_serial[device.serial_number] = record
            if device.udid:
                claim("UDID", device.udid, where, listed.in_file)
                inventory.by_udid[device.udid] = record
            dns_name = device.attributes.get(DNS_NAME_ATTRIBUTE)
            if dns_name:
                # DNS names compare case-insensitively (RFC 4343); Apple identifiers do not.
                key = dns_name.lower().rstrip(".")
                claim("dns_name", key, where, listed.in_file)
                inventory.by_dns[key] = record
    return inventory


class StaticSource:
    """A :class:`~acmegate.policy.sources.base.SignalSource` over a fixed list of devices.

    Devices come from ``config.devices`` and, if set, ``config.file`` (both may be used; a
    serial number, UDID or ``dns_name`` present twice is an error). The constructor reads the
    file, so a broken inventory stops the service at start with :class:`InventoryError`.
    """

    def __init__(self, config: StaticSourceConfig) -> None:
        self.name = config.name
        self._inline = config.devices
        self._file = Path(config.file) if config.file else None
        self._lock = asyncio.Lock()
        self._signature: _FileSignature | None = None
        # The signature of a file that failed to load, and why: not re-parsed until it changes.
        self._broken: tuple[_FileSignature, str] | None = None
        self._inventory, self._signature = self._load()

    @property
    def attribute_names(self) -> frozenset[str]:
        """Every attribute name a device of the current inventory carries."""
        return frozenset(
            name for record in self._inventory.by_serial.values() for name in record.attributes
        )

    async def lookup(
        self,
        identity: str,
        kind: IdentityKind,
        *,
        fresh: bool = False,
        likely: DeviceKind | None = None,
    ) -> DeviceRecord | None:
        """The device with that serial number or UDID (exact) or ``dns_name`` attribute.

        The inventory is local and re-read when its file changes, so ``fresh`` changes
        nothing; one list holds every kind of device, so neither does ``likely``.
        """
        inventory = await self._current()
        if kind == "serial_number":
            return inventory.by_serial.get(identity)
        if kind == "udid":
            return inventory.by_udid.get(identity)
        return inventory.by_dns.get(identity.lower().rstrip("."))

    async def validate(self) -> ValidationReport:
        """Re-read the inventory and report its size, or what is wrong with it."""
        try:
            inventory, _ = await asyncio.to_thread(self._load)
        except InventoryError as exc:
            return ValidationReport(self.name, False, str(exc))
        origin = f" from {self._file}" if self._file else ""
        return ValidationReport(
            self.name,
            True,
            f"{inventory.size} devices ({inventory.managed} managed){origin}",
        )

    async def close(self) -> None:
        """Nothing to release: the file is read whole and closed at once."""

    def _stat(self) -> _FileSignature | None:
        if self._file is None:
            return None
        info = os.stat(self._file)
        # mtime alone can miss a rewrite within the file system's timestamp granularity.
        return (info.st_mtime_ns, info.st_size, info.st_ino)

    def _load(self) -> tuple[_Inventory, _FileSignature | None]:
        # Stat before reading: a change during the read then shows up on the next lookup.
        try:
            signature = self._stat()
        except OSError as exc:
            raise InventoryError(f"{self._file}: cannot read: {exc.strerror}") from exc
        lists = [_DeviceList("devices", self._inline, in_file=False)]
        if self._file is not None:
            lists.append(_DeviceList(f"{self._file}: $", read_inventory_file(self._file), True))
        return _index(lists), signature

    async def _current(self) -> _Inventory:
        if self._file is None:
            return self._inventory
        try:
            signature = self._stat()
        except OSError as exc:
            raise SourceUnavailable(self.name, f"{self._file}: {exc.strerror}") from exc
        if signature == self._signature:
            return self._inventory
        async with self._lock:
            if signature == self._signature:  # another lookup re-read it meanwhile
                return self._inventory
            if self._broken is not None and self._broken[0] == signature:
                raise SourceUnavailable(self.name, self._broken[1])
            try:
                inventory, loaded = await asyncio.to_thread(self._load)
            except InventoryError as exc:
                assert signature is not None
                self._broken = (signature, str(exc))
                raise SourceUnavailable(self.name, str(exc)) from exc
            self._inventory, self._signature, self._broken = inventory, loaded, None
            return inventory
