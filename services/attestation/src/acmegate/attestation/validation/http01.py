"""http-01 (RFC 8555 §8.3; for IP addresses RFC 8738 §5).

``GET http://<name>:80/.well-known/acme-challenge/<token>`` must answer 200 with the key
authorization (trailing whitespace ignored, §8.3). The rules, as Let's Encrypt's:

- Redirects (301, 302, 303, 307, 308) are followed, at most ``max_redirects``, and only to
  ``http`` on port 80 or ``https`` on port 443 (or the configured ``http_port`` /
  ``tls_alpn_port``, for labs); an https target's certificate is not checked, its content is.
- Every name is resolved by the validation resolver; one attempt, bounded by ``timeout``.
- At most ``max_body_bytes`` of a body are read; a longer one is an incorrect response.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import aiohttp

from acmegate.attestation.validation.problems import connection, incorrect
from acmegate.attestation.validation.resolver import Lookups

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_EXCERPT = 64


@dataclass(frozen=True, slots=True)
class HttpRules:
    port: int
    tls_port: int
    max_body_bytes: int
    max_redirects: int

    def allowed(self, scheme: str, port: int) -> bool:
        if scheme == "http":
            return port in (80, self.port)
        if scheme == "https":
            return port in (443, self.tls_port)
        return False


def _netloc(host: str, port: int) -> str:
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]:{port}"
    except ValueError:
        pass
    return f"{host}:{port}"


def challenge_url(host: str, token: str, port: int) -> str:
    """Where the key authorization of ``token`` is fetched (RFC 8555 §8.3)."""
    return f"http://{_netloc(host, port)}/.well-known/acme-challenge/{token}"


def _next_url(current: str, location: str | None, rules: HttpRules) -> str:
    if not location:
        raise connection(f"{current} redirected without a Location")
    target = urljoin(current, location)
    parts = urlsplit(target)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise connection(f"{current} redirected to an invalid URL") from None
    if not parts.hostname or not rules.allowed(scheme, port):
        raise connection(
            f"{current} redirected to {target[:200]}: only http on port 80 and https on "
            "port 443 are followed"
        )
    return target


async def validate(
    session: aiohttp.ClientSession,
    lookups: Lookups,
    rules: HttpRules,
    *,
    host: str,
    token: str,
    key_authorization: str,
) -> None:
    """Return if ``host`` serves ``key_authorization`` for ``token``; else raise the
    problem (``dns``, ``connection``, ``incorrectResponse``). The caller bounds the time."""
    url = challenge_url(host, token, rules.port)
    for _ in range(rules.max_redirects + 1):
        hostname = urlsplit(url).hostname or host
        if not _is_ip(hostname):
            # Resolved here first so that a DNS failure is reported as `dns`, not as a
            # connection error (aiohttp wraps its resolver's errors).
            await lookups.addresses(hostname)
        try:
            async with session.get(url, allow_redirects=False) as response:
                status = response.status
                if status in _REDIRECTS:
                    url = _next_url(url, response.headers.get("Location"), rules)
                    continue
                body = await response.content.read(rules.max_body_bytes + 1)
        except TimeoutError:
            raise connection(f"fetching {url}: timed out") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise connection(f"fetching {url}: {_describe(exc)}") from None
        if status != 200:
            raise incorrect(f"{url} answered HTTP {status}, not 200 with the key authorization")
        if len(body) > rules.max_body_bytes:
            raise incorrect(f"{url} answered more than {rules.max_body_bytes} bytes")
        # RFC 8555 §8.3: trailing whitespace is ignored.
        answer = body.decode("utf-8", errors="replace").rstrip(" \t\r\n")
        if answer != key_authorization:
            raise incorrect(
                f"{url} answered {answer[:_EXCERPT]!r}, not the key authorization "
                f"{key_authorization!r}"
            )
        return
    raise connection(f"more than {rules.max_redirects} redirects fetching {url}")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {exc.host}:{exc.port} ({exc.os_error.strerror or exc})"
    return type(exc).__name__
