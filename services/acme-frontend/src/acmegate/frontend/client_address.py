"""Who is asking, and over what: the client address and scheme of a request, believing the
``X-Forwarded-For`` / ``X-Forwarded-Proto`` headers only from configured trusted proxies.

Behind a load balancer or a Kubernetes ingress the TCP peer is the proxy; the proxy appends the
address it received the connection from to ``X-Forwarded-For``. Anyone can send that header, so
it is read only when the peer is a trusted proxy, and then from the right: each address added
by a trusted proxy is skipped, and the first one no trusted proxy vouches for is the client
(whatever a client wrote on the left is never believed). Without trusted proxies, the peer is
the client and forwarded headers are ignored.

A rate-limited client is its IPv4 address, or its IPv6 /64: one IPv6 host or site usually
holds a whole /64 and could otherwise take a new address per request (RFC 4291 §2.5.1: the
interface identifier is the low 64 bits).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from aiohttp import web

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_FORWARDED_FOR = "X-Forwarded-For"
_FORWARDED_PROTO = "X-Forwarded-Proto"


def parse_address(text: str) -> IPAddress | None:
    """An address as proxies write it (``1.2.3.4``, ``1.2.3.4:567``, ``[::1]:8``, ``::1``);
    an IPv4-mapped IPv6 address is its IPv4 address. None for anything else."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def limit_subject(address: IPAddress) -> str:
    """The rate-limit subject of a client address: IPv4 itself, IPv6 its /64."""
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@dataclass(frozen=True)
class TrustedProxies:
    """The peers whose forwarded headers are believed (a listener's ``trusted_proxies``)."""

    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_config(cls, networks: list[str]) -> TrustedProxies:
        return cls(tuple(ipaddress.ip_network(n, strict=False) for n in networks))

    def trusts(self, address: IPAddress | None) -> bool:
        return address is not None and any(address in network for network in self.networks)

    def _peer(self, request: web.Request) -> IPAddress | None:
        return parse_address(request.remote) if request.remote else None

    def client(self, request: web.Request) -> IPAddress | None:
        """The client's address (None only if the peer's is unknown, e.g. a Unix socket)."""
        client = self._peer(request)
        if not self.trusts(client):
            return client
        hops = [
            hop for value in request.headers.getall(_FORWARDED_FOR, []) for hop in value.split(",")
        ]
        for hop in reversed(hops):
            address = parse_address(hop)
            if address is None:
                # Not an address: no trusted proxy wrote it; the last trusted hop stands.
                return client
            client = address
            if not self.trusts(address):
                return address
        return client

    def client_subject(self, request: web.Request) -> str:
        """The rate-limit subject of the request's client."""
        address = self.client(request)
        return limit_subject(address) if address is not None else "unknown"

    def https(self, request: web.Request) -> bool:
        """Whether the client's connection is TLS: here, or at a trusted proxy that says so."""
        if request.secure:
            return True
        # Every response asks: without trusted proxies the peer is not even parsed.
        if not self.networks or not self.trusts(self._peer(request)):
            return False
        proto = request.headers.get(_FORWARDED_PROTO, "")
        # The proxy nearest to the client speaks first; the gateway's own peer speaks last.
        first = proto.split(",")[0].strip().lower()
        return first == "https"
