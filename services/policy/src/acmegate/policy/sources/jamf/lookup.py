"""The Jamf Pro signal source: a device looked up by serial number or UDID, mapped to a record.

A serial may be a Mac's or an iPhone's, so both inventories are asked, the likely one first (the
attestation tells a Mac from an iPhone: :func:`acmegate.policy.lookups.likely_kind`). The value is
checked against ``[A-Za-z0-9-]`` before it goes into an RSQL filter (docs/jamf.md §8.3); anything
else cannot be a Jamf serial or UDID and is simply not found. More than one record for one serial
(a logic-board swap leaves duplicates, docs/jamf.md §8.5) is ambiguous and vouches for nothing.

Caching (docs/jamf.md "Caching"): a device that passes (known, managed, unambiguous) may be
served from the cache for at most the source's ``cache`` seconds; a failing answer is never
cached, and a fresh failing answer evicts the cached pass. There is no stale-if-error: when
Jamf cannot answer and the entry has expired, the lookup fails as unavailable. ``fresh``
lookups (revoke-on-failure re-checks, RADIUS) skip the cache. Department, building and site
names are cached apart, for ``names_cache``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog

from acmegate.common.config import seconds
from acmegate.common.config.model import ClientCredentialsAuth, JamfSourceConfig
from acmegate.policy.sources.base import (
    DeviceKind,
    DeviceRecord,
    IdentityKind,
    SourceUnavailable,
    ValidationReport,
)
from acmegate.policy.sources.jamf.auth import ClientCredentialsTokens, TokenSource, UserTokens
from acmegate.policy.sources.jamf.batch import FILTER_FIELDS, Batcher
from acmegate.policy.sources.jamf.cache import TtlCache
from acmegate.policy.sources.jamf.client import JamfClient, SearchResult
from acmegate.policy.sources.jamf.diagnose import check_connection
from acmegate.policy.sources.jamf.errors import JamfError
from acmegate.policy.sources.jamf.http import JamfHttp, Sleep
from acmegate.policy.sources.jamf.mapping import AttributeMapping, NameRef, identifiers, managed

log = structlog.get_logger(__name__)

# What a serial number or UDID may hold (Apple serials: alphanumerics; UDIDs: hex and '-').
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9-]{1,64}$")

LookupField = str  # "serial" or "udid"

_FILTER_FIELDS = FILTER_FIELDS
_KIND_WORDS: dict[DeviceKind, str] = {"computer": "computer", "mobile_device": "mobile device"}


def safe_value(value: str) -> bool:
    """Whether ``value`` may be put into an RSQL filter as a serial number or UDID."""
    return bool(_SAFE_VALUE.match(value))


def rsql_equals(field: str, value: str) -> str:
    """``field=="value"``; ``value`` must have passed :func:`safe_value`."""
    if not safe_value(value):
        raise ValueError(f"refusing to put {value!r} into an RSQL filter")
    return f'{field}=="{value}"'


def ssl_context(config: JamfSourceConfig) -> ssl.SSLContext | None:
    """A context trusting ``ca_bundle`` (a private CA in front of Jamf); ``None``: the system's."""
    if config.ca_bundle is None:
        return None
    return ssl.create_default_context(cafile=config.ca_bundle)


def token_source(
    config: JamfSourceConfig, http: JamfHttp, monotonic: Callable[[], float]
) -> TokenSource:
    """The token source of the configured authentication type."""
    auth = config.auth
    if isinstance(auth, ClientCredentialsAuth):
        return ClientCredentialsTokens(
            http, auth.client_id, auth.client_secret, monotonic=monotonic
        )
    return UserTokens(http, auth.username, auth.password, monotonic=monotonic)


class JamfSource:
    """A :class:`~acmegate.policy.sources.base.SignalSource` backed by one Jamf Pro server.

    ``monotonic`` drives token renewal and cache expiry, ``sleep`` the retry backoff; tests
    inject both.
    """

    def __init__(
        self,
        config: JamfSourceConfig,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.name = config.name
        self.config = config
        self.mapping = AttributeMapping(config.attribute_mapping, config.groups)
        http = JamfHttp(
            config.url,
            source=config.name,
            timeout=float(seconds(config.timeout)),
            max_connections=config.max_connections,
            retries=config.retries,
            ssl_context=ssl_context(config),
            sleep=sleep,
        )
        self.client = JamfClient(http, token_source(config, http, monotonic))
        self._records: TtlCache[tuple[str, str], DeviceRecord] = TtlCache(
            float(seconds(config.cache)), clock=monotonic
        )
        self._names: TtlCache[tuple[str, str], str] = TtlCache(
            float(seconds(config.names_cache)), clock=monotonic
        )
        self._sites: TtlCache[str, dict[str, str]] = TtlCache(
            float(seconds(config.names_cache)), clock=monotonic
        )
        # Batching off (size 0 or 1): one request per lookup, as before.
        self.batcher: Batcher | None = (
            Batcher(
                self._search,
                window=config.batch_window_ms / 1000,
                size=config.batch_size,
                slots=config.max_connections,
            )
            if config.batch_size > 1
            else None
        )

    @property
    def attribute_names(self) -> frozenset[str]:
        """The attributes this source offers to templates (``${/source/<name>}``)."""
        return frozenset(self.config.attribute_mapping)

    def _target(self, identity: str, kind: IdentityKind) -> tuple[LookupField, str]:
        if kind == "serial_number":
            return "serial", identity
        if kind == "udid":
            return "udid", identity
        # A SAN dNSName names the device by its first label, holding the serial number (or
        # UDID, per device_lookup), as in the guide's "Validate Configuration" pop-up.
        label = identity.split(".", 1)[0]
        return ("udid" if self.config.device_lookup == "udid" else "serial"), label

    async def lookup(
        self,
        identity: str,
        kind: IdentityKind,
        *,
        fresh: bool = False,
        likely: DeviceKind | None = None,
    ) -> DeviceRecord | None:
        """The device Jamf knows by ``identity``; see the module for cache and order rules."""
        field, value = self._target(identity, kind)
        # The serial is read back from Jamf unless it is exactly what was asked for.
        read_back = kind != "serial_number"
        if not safe_value(value):
            log.info("not a serial number or UDID, not asked", source=self.name, field=field)
            return None
        key = (field, value.upper())  # Jamf compares strings case-insensitively (docs/jamf.md §8.3)
        if not fresh:
            cached = self._records.get(key)
            if cached is not None:
                return dataclasses.replace(cached, from_cache=True)
        try:
            record = await self._ask(field, value, likely, read_back)
        except JamfError as exc:
            raise SourceUnavailable(self.name, str(exc)) from exc
        if record is not None and record.passes:
            self._records.put(key, record)
        else:
            self._records.evict(key)
        return record

    async def _ask(
        self, field: LookupField, value: str, likely: DeviceKind | None, read_back: bool
    ) -> DeviceRecord | None:
        order: tuple[DeviceKind, ...] = (
            ("mobile_device", "computer")
            if likely == "mobile_device"
            else ("computer", "mobile_device")
        )
        for device_kind in order:
            sections = sorted(self.mapping.sections(device_kind, with_hardware=read_back))
            if self.batcher is not None:
                result = await self.batcher.find(device_kind, field, value, sections)
            else:
                rsql = rsql_equals(_FILTER_FIELDS[device_kind][field], value)
                result = await self._search(device_kind, rsql, sections, 2)
            if result.total == 0 or not result.results:
                continue
            if result.total > 1:
                return DeviceRecord(
                    serial_number=value if field == "serial" else None,
                    udid=value if field == "udid" else None,
                    managed=False,
                    platform=device_kind,
                    identifiers_ignore_case=True,
                    problem=(
                        f"{result.total} Jamf Pro {_KIND_WORDS[device_kind]} records match "
                        f"{field} {value} (ambiguous)"
                    ),
                )
            return await self._record(result.results[0], device_kind, field, value)
        return None

    async def _search(
        self, kind: DeviceKind, rsql: str, sections: Sequence[str], page_size: int
    ) -> SearchResult:
        if kind == "computer":
            return await self.client.computers(rsql, sections, page_size=page_size)
        return await self.client.mobile_devices(rsql, sections, page_size=page_size)

    def forget(self, serial_number: str | None = None, udid: str | None = None) -> None:
        """Drop the cached lookups of one device (a Jamf webhook said it changed)."""
        if serial_number:
            self._records.evict(("serial", serial_number.upper()))
        if udid:
            self._records.evict(("udid", udid.upper()))

    async def identities_of(self, kind: DeviceKind, ids: Sequence[str]) -> list[str]:
        """Serial numbers and UDIDs of the devices Jamf knows by these ids (a smart group
        webhook names devices by id); :class:`SourceUnavailable` when Jamf cannot answer."""
        numeric = [i for i in ids if i.isdigit()][:1000]
        if not numeric:
            return []
        selector = "id" if kind == "computer" else "mobileDeviceId"
        rsql = f"{selector}=in=({','.join(numeric)})"
        try:
            result = await self._search(kind, rsql, ["GENERAL", "HARDWARE"], len(numeric))
        except JamfError as exc:
            raise SourceUnavailable(self.name, str(exc)) from exc
        return [
            value
            for record in result.results
            for value in identifiers(record, kind)
            if value is not None
        ]

    async def _record(
        self, raw: Mapping[str, Any], kind: DeviceKind, field: LookupField, value: str
    ) -> DeviceRecord:
        extracted = self.mapping.extract(raw, kind)
        attributes = dict(extracted.attributes)
        if extracted.pending:
            names = await asyncio.gather(
                *(self._name(ref, identifier) for _, ref, identifier in extracted.pending)
            )
            for (attribute, _, _), name in zip(extracted.pending, names, strict=True):
                if name is not None:
                    attributes[attribute] = name
        serial, udid = identifiers(raw, kind)
        return DeviceRecord(
            serial_number=serial or (value if field == "serial" else None),
            udid=udid or (value if field == "udid" else None),
            managed=managed(raw, kind),
            attributes=attributes,
            groups=self.mapping.member_of(raw, kind),
            platform=kind,
            identifiers_ignore_case=True,
        )

    async def _name(self, ref: NameRef, identifier: str) -> str | None:
        if ref.kind == "site":
            sites = self._sites.get("sites")
            if sites is None:
                sites = await self.client.sites()
                self._sites.put("sites", sites)
            return sites.get(identifier)
        key = (ref.kind, identifier)
        name = self._names.get(key)
        if name is None:
            name = await self.client.name_of(ref.kind, identifier)
            if name is not None:
                self._names.put(key, name)
        return name

    async def validate(self) -> ValidationReport:
        """The guide's "Validate": OK with the Jamf version, or exactly what failed."""
        return await check_connection(self)

    async def close(self) -> None:
        """Invalidate a user token and close the connections."""
        await self.client.close()
