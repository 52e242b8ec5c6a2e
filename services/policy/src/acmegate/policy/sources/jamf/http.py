"""HTTP to one Jamf Pro instance: a connection cap, timeouts, retries with backoff, a User-Agent.

Jamf has no rate limiter of its own and asks clients for "no more than 5 concurrent
connections" (docs/jamf.md §8.6). Two guards keep that promise: the aiohttp connector holds at
most ``max_connections`` connections to the host, and a semaphore lets no more than that many
requests be in flight (a request waiting for a connection would otherwise still count as one
for the server once the connector hands it a fresh socket). Token requests share the same
session, so they count too.

Retries: connection errors, timeouts and 5xx answers are retried ``retries`` times with
exponential backoff and jitter (docs/jamf.md §8.6; Jamf documents no 429);
anything else is the caller's to interpret. Every attempt is timed in ``/metrics``
(``acmegate_jamf_request_duration_seconds{source, endpoint, status}``, numeric path segments
written ``{id}``) and, with tracing on, is a span of its own.

Cookies are not kept: Jamf Cloud's sticky-session cookie is only needed for write-then-read
flows, and Jamf warns against pinning all traffic (docs/jamf.md §8.6).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import random
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import msgspec

from acmegate.common import metrics, tracing
from acmegate.policy.sources.jamf.errors import JamfError, JamfFailure

USER_AGENT = "acmegate/0.1 (Jamf Pro signal source; +https://github.com/acmegate)"

# Error bodies are kept for diagnostics, never whole.
_TEXT_LIMIT = 500

Sleep = Callable[[float], Awaitable[None]]

# Set by :func:`single_attempts`: requests of this task are not retried.
_SINGLE_ATTEMPT: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "jamf_single_attempt", default=False
)


@contextlib.contextmanager
def single_attempts() -> Iterator[None]:
    """Within the block (this task only), every request is tried once: the guide's
    "Validate" answers within one timeout, and lookups running beside it keep their retries."""
    token = _SINGLE_ATTEMPT.set(True)
    try:
        yield
    finally:
        _SINGLE_ATTEMPT.reset(token)


@dataclass(frozen=True, slots=True)
class JamfResponse:
    """A finished exchange: status, the decoded JSON body (``None`` if not JSON), its text."""

    status: int
    body: Any
    text: str
    # The whole answer (the Classic API's XML is read from it).
    raw: bytes = b""


def _endpoint(url: str) -> str:
    """The API path of ``url`` with numeric segments as ``{id}`` (a bounded metric label)."""
    return "/".join("{id}" if part.isdigit() else part for part in urlsplit(url).path.split("/"))


def _describe(method: str, url: str) -> str:
    parts = urlsplit(url)
    return f"{method} {parts.path}"


def classify(exc: BaseException, *, method: str, url: str, timeout: float) -> JamfError:
    """The :class:`JamfError` an aiohttp/asyncio exception stands for."""
    host = urlsplit(url).netloc
    what = _describe(method, url)
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return JamfError(JamfFailure.DNS, f"cannot resolve {host}: {exc.os_error}")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return JamfError(
            JamfFailure.TLS, f"{host} presented a certificate that does not verify: {exc}"
        )
    if isinstance(exc, aiohttp.ClientSSLError):
        return JamfError(JamfFailure.TLS, f"TLS handshake with {host} failed: {exc}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, socket.gaierror):
            return JamfError(JamfFailure.DNS, f"cannot resolve {host}: {exc.os_error}")
        if isinstance(exc.os_error, ssl.SSLError):
            return JamfError(JamfFailure.TLS, f"TLS handshake with {host} failed: {exc.os_error}")
        reason = exc.os_error.strerror or str(exc.os_error)
        return JamfError(JamfFailure.CONNECT, f"cannot connect to {host}: {reason}")
    if isinstance(exc, TimeoutError):
        return JamfError(JamfFailure.TIMEOUT, f"{what} got no answer within {timeout:g}s")
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        return JamfError(JamfFailure.CONNECT, f"{what}: connection to {host} lost: {exc}")
    return JamfError(JamfFailure.PROTOCOL, f"{what}: {type(exc).__name__}: {exc}")


class JamfHttp:
    """Requests to one Jamf Pro URL with the guards described in this module.

    The session is opened on first use (it needs a running event loop) and closed by
    :meth:`close`. ``sleep`` and ``jitter`` are injected so tests need not wait.
    """

    def __init__(
        self,
        base_url: str,
        *,
        source: str = "jamf",
        timeout: float,
        max_connections: int,
        retries: int,
        ssl_context: ssl.SSLContext | None = None,
        backoff: float = 0.25,
        sleep: Sleep = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.source = source
        self.timeout = timeout
        self.max_connections = max_connections
        self.retries = retries
        self._ssl = ssl_context
        self._backoff = backoff
        self._sleep = sleep
        self._jitter = jitter
        self._session: aiohttp.ClientSession | None = None
        self._slots = asyncio.Semaphore(max_connections)

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections,
                limit_per_host=self.max_connections,
                ssl=self._ssl if self._ssl is not None else True,
                ttl_dns_cache=300,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
                cookie_jar=aiohttp.DummyCookieJar(),
                raise_for_status=False,
            )
        return self._session

    def url(self, path: str) -> str:
        """The absolute URL of an API path such as ``/api/v1/auth/token``."""
        return self.base_url + path

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] | None = None,
        form: Mapping[str, str] | None = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        retry: bool = True,
        timeout: float | None = None,
    ) -> JamfResponse:
        """One request (retried on transient failures); :class:`JamfError` when it cannot be
        answered. Any status below 500 is returned for the caller to interpret."""
        url = self.url(path)
        attempts = 1 + (self.retries if retry and not _SINGLE_ATTEMPT.get() else 0)
        last: JamfError | None = None
        for attempt in range(attempts):
            if attempt:
                await self._sleep(self._delay(attempt))
            try:
                response = await self._once(method, url, params, form, data, headers, timeout)
            except JamfError as exc:
                if not exc.transient:
                    raise
                last = exc
                continue
            if response.status >= 500:
                last = JamfError(
                    JamfFailure.SERVER,
                    f"{_describe(method, url)} answered HTTP {response.status}",
                )
                continue
            return response
        assert last is not None
        raise last

    def _delay(self, attempt: int) -> float:
        # Exponential with full jitter between half and one and a half of the step.
        return float(self._backoff * 2 ** (attempt - 1) * (0.5 + self._jitter()))

    async def _once(
        self,
        method: str,
        url: str,
        params: Sequence[tuple[str, str]] | None,
        form: Mapping[str, str] | None,
        data: bytes | None,
        headers: Mapping[str, str] | None,
        timeout: float | None,
    ) -> JamfResponse:
        session = self._open()
        limit = timeout if timeout is not None else self.timeout
        endpoint = _endpoint(url)
        async with self._slots:
            started = time.perf_counter()
            outcome = "error"
            try:
                with tracing.span("acmegate.policy", f"jamf {method} {endpoint}"):
                    async with session.request(
                        method,
                        url,
                        params=list(params) if params else None,
                        data=dict(form) if form is not None else data,
                        headers=dict(headers) if headers else None,
                        timeout=aiohttp.ClientTimeout(total=limit),
                        allow_redirects=False,
                    ) as response:
                        raw = await response.read()
                        status = response.status
                        content_type = response.content_type
                outcome = str(status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = classify(exc, method=method, url=url, timeout=limit)
                outcome = error.kind.name.lower()
                raise error from exc
            finally:
                metrics.jamf_requests(self.source, endpoint, outcome).observe(
                    time.perf_counter() - started
                )
        text = raw[:_TEXT_LIMIT].decode("utf-8", errors="replace")
        body: Any = None
        if raw and (content_type.endswith("json") or raw[:1] in (b"{", b"[")):
            try:
                body = msgspec.json.decode(raw)
            except msgspec.DecodeError:
                body = None
        return JamfResponse(status, body, text, raw)

    async def close(self) -> None:
        """Close the session and its connections."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
