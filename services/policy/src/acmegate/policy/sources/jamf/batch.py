"""Batched inventory searches: many serials or UDIDs in one ``=in=(...)`` request.

Jamf asks for at most 5 concurrent connections (docs/jamf.md §8.6), so one lookup per request
caps a source at about 5 / latency lookups per second. Jamf's RSQL accepts
``field=in=(A,B,...)`` (docs/jamf.md §8.3, "Batching"): lookups of the same inventory, field and
sections are queued, and a drain task takes up to ``size`` of them per request. A drain starts
``window`` seconds after the first lookup of a group is queued (or at once when ``size`` are
waiting) and first waits for one of the ``slots``: while every slot is busy, the queue keeps
filling, so the batch grows with the load and the throughput with it.

The answer is split per device by the identifiers each record carries (compared
case-insensitively, as Jamf compares). A value no record matches is "not known", exactly as a
single search answering ``totalCount`` 0; two or more records for one value keep their count
(the ambiguous-duplicate rule). When Jamf holds more matches than one page returned (the page is
sized to twice the batch), the batch cannot be split faithfully and each lookup falls back to
its own search. A failed request fails every lookup of the batch with the same error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from acmegate.policy.sources.base import DeviceKind
from acmegate.policy.sources.jamf.client import SearchResult
from acmegate.policy.sources.jamf.mapping import identifiers

log = structlog.get_logger(__name__)

# (inventory, field "serial"/"udid", sections): lookups that can share one request.
GroupKey = tuple[DeviceKind, str, tuple[str, ...]]
# Runs one search: (inventory, RSQL filter, sections, page size) → one page of results.
Search = Callable[[DeviceKind, str, Sequence[str], int], Awaitable[SearchResult]]

FILTER_FIELDS: dict[DeviceKind, dict[str, str]] = {
    "computer": {"serial": "hardware.serialNumber", "udid": "udid"},
    "mobile_device": {"serial": "serialNumber", "udid": "udid"},
}


def rsql_equals(selector: str, value: str) -> str:
    """``selector=="value"``; the value must already be a safe serial or UDID."""
    return f'{selector}=="{value}"'


def rsql_in(selector: str, values: Sequence[str]) -> str:
    """``selector=in=("A","B")``; every value must already be a safe serial or UDID."""
    return f"{selector}=in=({','.join(f'{chr(34)}{value}{chr(34)}' for value in values)})"


def _value_of(record: dict[str, Any], kind: DeviceKind, field_name: str) -> str | None:
    serial, udid = identifiers(record, kind)
    value = serial if field_name == "serial" else udid
    return value.casefold() if value else None


@dataclass
class _Group:
    waiting: list[tuple[str, asyncio.Future[SearchResult]]] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None
    draining: bool = False


class Batcher:
    """Coalesces single-device searches of one Jamf source (see the module)."""

    def __init__(self, search: Search, *, window: float, size: int, slots: int) -> None:
        self._search = search
        self.window = window
        self.size = size
        self._slots = asyncio.Semaphore(slots)
        self._groups: dict[GroupKey, _Group] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def find(
        self, kind: DeviceKind, field_name: str, value: str, sections: Sequence[str]
    ) -> SearchResult:
        """The records of ``kind`` whose ``field_name`` is ``value`` (case-insensitive)."""
        key: GroupKey = (kind, field_name, tuple(sorted(sections)))
        group = self._groups.setdefault(key, _Group())
        future: asyncio.Future[SearchResult] = asyncio.get_running_loop().create_future()
        group.waiting.append((value, future))
        if len(group.waiting) >= self.size and group.timer is not None:
            group.timer.cancel()
            group.timer = None
            self._start(key)
        elif group.timer is None and not group.draining:
            group.timer = asyncio.get_running_loop().call_later(self.window, self._start, key)
        return await future

    def _start(self, key: GroupKey) -> None:
        group = self._groups[key]
        group.timer = None
        group.draining = True
        task = asyncio.get_running_loop().create_task(self._drain(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self, key: GroupKey) -> None:
        group = self._groups[key]
        async with self._slots:
            # Taken only now: lookups queued while every slot was busy ride along.
            batch = [(v, f) for v, f in group.waiting[: self.size] if not f.done()]
            del group.waiting[: self.size]
            group.draining = False
            if group.waiting:
                self._start(key)
            if batch:
                await self._answer(key, batch)

    async def _answer(
        self, key: GroupKey, batch: list[tuple[str, asyncio.Future[SearchResult]]]
    ) -> None:
        kind, field_name, sections = key
        values = sorted({value.casefold(): value for value, _ in batch}.values())
        try:
            if len(values) == 1:
                # Alone in its window: the single search of old, nothing to split.
                single = await self._search(
                    kind, rsql_equals(FILTER_FIELDS[kind][field_name], values[0]), sections, 2
                )
                split: dict[str, list[dict[str, Any]]] | None = {values[0].casefold(): []}
                results = {values[0].casefold(): single}
            else:
                # The answer is split by the serial each record carries: read it back.
                wanted = {*sections, "HARDWARE"} if field_name == "serial" else set(sections)
                result = await self._search(
                    kind,
                    rsql_in(FILTER_FIELDS[kind][field_name], values),
                    sorted(wanted),
                    min(2 * len(values), 2000),
                )
                split = self._split(result, kind, field_name)
                results = {}
        except Exception as exc:  # noqa: BLE001 - handed to every lookup of the batch
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for value, future in batch:
            if future.done():
                continue
            if split is None:
                # Not every match fits one page: this lookup asks on its own.
                self._fallback(kind, field_name, value, sections, future)
                continue
            if value.casefold() in results:
                future.set_result(results[value.casefold()])
                continue
            matches = split.get(value.casefold(), [])
            future.set_result(SearchResult(len(matches), matches))

    @staticmethod
    def _split(
        result: SearchResult, kind: DeviceKind, field_name: str
    ) -> dict[str, list[dict[str, Any]]] | None:
        if result.total > len(result.results):
            return None
        split: dict[str, list[dict[str, Any]]] = {}
        for record in result.results:
            value = _value_of(record, kind, field_name)
            if value is not None:
                split.setdefault(value, []).append(record)
        return split

    def _fallback(
        self,
        kind: DeviceKind,
        field_name: str,
        value: str,
        sections: Sequence[str],
        future: asyncio.Future[SearchResult],
    ) -> None:
        async def alone() -> None:
            try:
                async with self._slots:
                    result = await self._search(
                        kind, rsql_equals(FILTER_FIELDS[kind][field_name], value), sections, 2
                    )
            except Exception as exc:  # noqa: BLE001 - the lookup's own failure
                if not future.done():
                    future.set_exception(exc)
                return
            if not future.done():
                future.set_result(result)

        log.info("batch answer exceeded one page, asking alone", kind=kind)
        task = asyncio.get_running_loop().create_task(alone())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
