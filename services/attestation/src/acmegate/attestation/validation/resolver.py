"""The one DNS resolver of validation: dns-01 TXT, CAA and the addresses http-01 and
tls-alpn-01 connect to all come from it, so pointing it at a lab DNS server (tests use
pebble-challtestsrv) moves every lookup at once.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from typing import Any

import aiohttp
import dns.asyncresolver
import dns.exception
import dns.rdatatype
import dns.resolver
from aiohttp.abc import AbstractResolver, ResolveResult

from acmegate.attestation.validation.problems import dns as dns_problem
from acmegate.common.config.model import ResolverConfig
from acmegate.common.config.model import seconds as config_seconds
from acmegate.common.errors import AcmeError


def _nameserver(text: str) -> tuple[str, int]:
    """``address``, ``address:port`` or ``[v6]:port``."""
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
        return host, int(port or 53)
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, 53


def make_resolver(config: ResolverConfig) -> dns.asyncresolver.Resolver:
    """A resolver of the configured name servers (else the system's), timeouts applied."""
    if config.nameservers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        servers = [_nameserver(text) for text in config.nameservers]
        resolver.nameservers = [host for host, _ in servers]
        resolver.nameserver_ports = dict(servers)
    else:
        resolver = dns.asyncresolver.Resolver()
    resolver.lifetime = float(config_seconds(config.timeout))
    resolver.timeout = resolver.lifetime
    return resolver


class Lookups:
    """Lookups that fail with the ``dns`` problem (RFC 8555 §6.7)."""

    def __init__(self, resolver: dns.asyncresolver.Resolver) -> None:
        self.resolver = resolver

    async def records(self, name: str, rdtype: str, *, missing_ok: bool) -> list[Any]:
        """The records of ``name``; with ``missing_ok`` NXDOMAIN or no data is ``[]``."""
        try:
            answer = await self.resolver.resolve(name, rdtype, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            if missing_ok:
                return []
            raise dns_problem(f"NXDOMAIN looking up {rdtype} for {name}") from None
        except dns.resolver.NoNameservers:
            raise dns_problem(f"SERVFAIL looking up {rdtype} for {name}") from None
        except dns.exception.Timeout:
            raise dns_problem(f"query timed out looking up {rdtype} for {name}") from None
        except dns.exception.DNSException as exc:
            raise dns_problem(f"looking up {rdtype} for {name}: {type(exc).__name__}") from None
        return list(answer.rrset) if answer.rrset is not None else []

    async def addresses(self, host: str) -> list[str]:
        """The IPv4 and IPv6 addresses of ``host`` (IPv6 first, as Boulder prefers)."""
        if is_localhost(host):
            # RFC 6761 §6.3: localhost names are loopback, answered without asking DNS.
            return ["127.0.0.1"]
        found: list[str] = []
        errors: list[AcmeError] = []
        for rdtype in ("AAAA", "A"):
            try:
                found += [r.address for r in await self.records(host, rdtype, missing_ok=False)]
            except AcmeError as exc:
                errors.append(exc)  # one family failing is not the end
        if found:
            return found
        raise errors[-1] if errors else dns_problem(f"no A or AAAA record for {host}")


def is_localhost(name: str) -> bool:
    """A name under ``localhost.`` (RFC 6761 §6.3): it exists on this host alone."""
    return name.rstrip(".").lower().endswith(".localhost")


class AiohttpResolver(AbstractResolver):
    """aiohttp's resolver interface over :class:`Lookups` (http-01 and its redirects)."""

    def __init__(self, lookups: Lookups) -> None:
        self._lookups = lookups

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            addresses: Sequence[str] = [str(ipaddress.ip_address(host))]
        except ValueError:
            addresses = await self._lookups.addresses(host)
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        """Nothing to release (dnspython keeps no sockets open)."""


def connector(lookups: Lookups) -> aiohttp.TCPConnector:
    """A connector that resolves through ``lookups`` and never checks certificates (an
    https redirect target is validated by its content, as Let's Encrypt does)."""
    return aiohttp.TCPConnector(resolver=AiohttpResolver(lookups), ssl=False, force_close=True)
