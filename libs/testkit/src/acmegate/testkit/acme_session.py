"""A small asyncio RFC 8555 client session for tests and the device simulator.

It does what every ACME client must (directory discovery, the nonce pool fed from every
response, JWS signing with ``jwk`` or ``kid``, one retry on ``badNonce`` with the nonce that
error carries, ``Retry-After``-aware polling, problem documents turned into
:class:`AcmeProblem`) and offers raw escape hatches (:meth:`AcmeSession.sign`,
:meth:`AcmeSession.post_raw`) for tests that must send broken requests.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections import deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy

from acmegate.testkit.jws import JwsSigner

PROBLEM_PREFIX = "urn:ietf:params:acme:error:"
JOSE_CONTENT_TYPE = "application/jose+json"
PROBLEM_CONTENT_TYPE = "application/problem+json"
PEM_CHAIN_CONTENT_TYPE = "application/pem-certificate-chain"
USER_AGENT = "acmegate-testkit/0.1"  # RFC 8555 §6.1: clients MUST send a User-Agent

# Statuses during which an ACME object is still being worked on (RFC 8555 §7.1.6).
_IN_PROGRESS = frozenset({"pending", "processing"})


class AcmeProblem(Exception):
    """An RFC 7807 problem document the server answered with (RFC 8555 §6.7).

    Also used for problems embedded in objects (a challenge's or an order's ``error``); then
    ``status`` is the document's own ``status`` member, or 0 if it has none.
    """

    def __init__(
        self,
        status: int,
        type: str,  # the RFC 7807 member name
        detail: str,
        subproblems: list[dict[str, Any]],
        body: Mapping[str, Any],
    ) -> None:
        super().__init__(f"{type} (HTTP {status}): {detail}")
        self.status = status
        self.type = type
        self.detail = detail
        self.subproblems = subproblems
        self.body = dict(body)

    @property
    def kind(self) -> str:
        """The ACME error type without the URN prefix, e.g. ``badAttestationStatement``."""
        return self.type.removeprefix(PROBLEM_PREFIX)

    @property
    def subproblem_kinds(self) -> list[str]:
        """The ``type`` of each subproblem without the URN prefix (RFC 8555 §6.7.1)."""
        return [str(sub.get("type", "")).removeprefix(PROBLEM_PREFIX) for sub in self.subproblems]

    @classmethod
    def from_document(cls, document: Mapping[str, Any], status: int | None = None) -> AcmeProblem:
        """The problem in a parsed problem document (HTTP ``status`` wins over the member)."""
        if status is None:
            raw_status = document.get("status", 0)
            status = raw_status if isinstance(raw_status, int) else 0
        subproblems = document.get("subproblems") or []
        return cls(
            status=status,
            type=str(document.get("type", "about:blank")),
            detail=str(document.get("detail", "")),
            subproblems=[dict(sub) for sub in subproblems if isinstance(sub, Mapping)],
            body=document,
        )


class AcmeProtocolError(Exception):
    """The server's answer does not follow RFC 8555 closely enough for the client to go on."""


@dataclass(frozen=True)
class AcmeResponse:
    """One HTTP response, read in full."""

    method: str
    url: str
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower case."""
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON (``AcmeProtocolError`` if it is not JSON)."""
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise AcmeProtocolError(
                f"{self.method} {self.url}: expected JSON, got {self.content_type!r}: "
                f"{self.text[:200]!r}"
            ) from exc

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object (``AcmeProtocolError`` otherwise)."""
        value = self.json()
        if not isinstance(value, dict):
            raise AcmeProtocolError(f"{self.method} {self.url}: expected a JSON object")
        return value

    @property
    def location(self) -> str | None:
        return self.headers.get("Location")

    @property
    def nonce(self) -> str | None:
        return self.headers.get("Replay-Nonce")

    def links(self, rel: str) -> list[str]:
        """Targets of the ``Link`` headers with relation ``rel`` (RFC 8288; may repeat)."""
        targets = []
        for header in self.headers.getall("Link", []):
            for link in header.split(","):
                target, _, params = link.partition(";")
                rels = [
                    p.strip().removeprefix("rel=").strip('"')
                    for p in params.split(";")
                    if p.strip().startswith("rel=")
                ]
                if any(rel in r.split() for r in rels):
                    targets.append(target.strip().strip("<>"))
        return targets

    def retry_after(self) -> float | None:
        """Seconds to wait per ``Retry-After`` (delta-seconds or HTTP-date), or ``None``."""
        value = self.headers.get("Retry-After")
        if value is None:
            return None
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())

    @property
    def is_problem(self) -> bool:
        return self.content_type == PROBLEM_CONTENT_TYPE or self.status >= 400

    def problem(self) -> AcmeProblem | None:
        """The problem this response carries, if it is an error response."""
        if not self.is_problem:
            return None
        try:
            document = json.loads(self.body)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            return AcmeProblem(self.status, "about:blank", self.text[:500], [], {})
        return AcmeProblem.from_document(document, self.status)


class AcmeSession:
    """An RFC 8555 client session: one directory, one account key, one nonce pool.

    ``http`` may be shared between many sessions (one per simulated device); a session that
    creates its own closes it in :meth:`close`.
    """

    def __init__(
        self,
        directory_url: str,
        signer: JwsSigner | None = None,
        *,
        http: aiohttp.ClientSession | None = None,
        account_url: str | None = None,
        poll_interval: float = 0.2,
        max_retry_after: float = 10.0,
    ) -> None:
        self.directory_url = directory_url
        self.signer = signer if signer is not None else JwsSigner.generate()
        self.account_url = account_url
        self.poll_interval = poll_interval
        self.max_retry_after = max_retry_after
        self._http = http
        self._owns_http = http is None
        self._directory: dict[str, Any] | None = None
        self._nonces: deque[str] = deque()
        self.signed_requests = 0
        """How many signed POSTs :meth:`post` sent (each one JWS the server verifies)."""

    async def __aenter__(self) -> AcmeSession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session if this object created it."""
        if self._owns_http and self._http is not None:
            await self._http.close()
            self._http = None

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        return self._http

    # -- transport ---------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        url: str,
        *,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AcmeResponse:
        """Send one HTTP request; every ``Replay-Nonce`` received goes to the pool (§6.5)."""
        all_headers = {"User-Agent": USER_AGENT}
        all_headers.update(headers or {})
        async with self.http.request(
            method, url, data=data, headers=all_headers, allow_redirects=False
        ) as resp:
            body = await resp.read()
            response = AcmeResponse(method, url, resp.status, resp.headers, body)
        if response.nonce:
            self._nonces.append(response.nonce)
        return response

    async def directory(self) -> dict[str, Any]:
        """The directory object (RFC 8555 §7.1.1), fetched once."""
        if self._directory is None:
            response = await self.request("GET", self.directory_url)
            problem = response.problem()
            if problem is not None:
                raise problem
            self._directory = response.json_object()
        return self._directory

    async def url_of(self, resource: str) -> str:
        """The URL of a directory resource such as ``newOrder``."""
        directory = await self.directory()
        url = directory.get(resource)
        if not isinstance(url, str):
            raise AcmeProtocolError(f"directory has no {resource!r} URL")
        return url

    async def new_nonce(self) -> str:
        """A fresh nonce from ``newNonce`` (HEAD, RFC 8555 §7.2), not from the pool."""
        response = await self.request("HEAD", await self.url_of("newNonce"))
        if response.status not in (200, 204) or not response.nonce:
            raise AcmeProtocolError(
                f"newNonce answered {response.status} without a Replay-Nonce header"
            )
        # request() pooled it; hand out that very nonce.
        self._nonces.remove(response.nonce)
        return response.nonce

    async def take_nonce(self) -> str:
        """A nonce from the pool, or a fresh one when the pool is empty."""
        if self._nonces:
            return self._nonces.pop()
        return await self.new_nonce()

    @property
    def pooled_nonces(self) -> int:
        return len(self._nonces)

    # -- JWS ---------------------------------------------------------------------------------

    def sign(
        self,
        url: str,
        payload: Mapping[str, Any] | bytes | None,
        *,
        nonce: str | None,
        use_jwk: bool = False,
        protected: Mapping[str, Any] | None = None,
        omit: Iterable[str] = (),
        signer: JwsSigner | None = None,
    ) -> dict[str, str]:
        """Build a flattened JWS; ``protected`` adds or overrides header fields, ``omit`` drops
        some (e.g. ``omit=["nonce"]``), ``signer`` signs with another key than the account's.

        The header is otherwise RFC 8555 §6.2's: ``alg``, ``nonce``, ``url`` and ``kid`` (the
        account URL) or ``jwk`` when ``use_jwk`` is set or no account exists yet.
        """
        signer = signer or self.signer
        kid = None if use_jwk or self.account_url is None else self.account_url
        header = signer.protected_header(url=url, nonce=nonce, kid=kid)
        header.update(protected or {})
        for name in omit:
            header.pop(name, None)
        return signer.sign(header, payload)

    async def post_raw(
        self,
        url: str,
        body: bytes | str | Mapping[str, Any],
        content_type: str = JOSE_CONTENT_TYPE,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> AcmeResponse:
        """POST exactly ``body`` (a mapping is sent as JSON); problems are not raised."""
        if isinstance(body, Mapping):
            data = json.dumps(body).encode("utf-8")
        elif isinstance(body, str):
            data = body.encode("utf-8")
        else:
            data = body
        all_headers = {"Content-Type": content_type}
        all_headers.update(headers or {})
        return await self.request("POST", url, data=data, headers=all_headers)

    async def post(
        self,
        url: str,
        payload: Mapping[str, Any] | bytes | None,
        *,
        use_jwk: bool = False,
        accept: str | None = None,
    ) -> AcmeResponse:
        """A signed POST; raises :class:`AcmeProblem` on an error response.

        A ``badNonce`` error is retried once with a nonce from the pool, which holds the one
        the error response carried (RFC 8555 §6.5: "the client SHOULD retry the request").
        """
        headers = {"Accept": accept} if accept else None
        for attempt in range(2):
            jws = self.sign(url, payload, nonce=await self.take_nonce(), use_jwk=use_jwk)
            self.signed_requests += 1
            response = await self.post_raw(url, jws, headers=headers)
            problem = response.problem()
            if problem is None:
                return response
            if problem.kind != "badNonce" or attempt == 1:
                raise problem
        raise AssertionError("unreachable")  # pragma: no cover

    async def post_as_get(self, url: str, *, accept: str | None = None) -> AcmeResponse:
        """POST-as-GET (RFC 8555 §6.3): a signed POST with an empty payload."""
        return await self.post(url, None, accept=accept)

    # -- account -----------------------------------------------------------------------------

    async def new_account(self, payload: Mapping[str, Any] | None = None) -> AcmeResponse:
        """newAccount (RFC 8555 §7.3) signed with ``jwk``; remembers the account URL (``kid``).

        201 creates the account, 200 finds the existing one for this key; both carry the
        account URL in ``Location``.
        """
        body = payload if payload is not None else {"termsOfServiceAgreed": True}
        response = await self.post(await self.url_of("newAccount"), body, use_jwk=True)
        if not response.location:
            raise AcmeProtocolError(f"newAccount answered {response.status} without Location")
        self.account_url = response.location
        return response

    # -- polling -----------------------------------------------------------------------------

    async def poll(
        self,
        url: str,
        *,
        while_status: Collection[str] = _IN_PROGRESS,
        max_seconds: float = 30.0,
        first: AcmeResponse | None = None,
    ) -> AcmeResponse:
        """POST-as-GET ``url`` until the object's ``status`` leaves ``while_status``.

        Waits what ``Retry-After`` asks (RFC 8555 §7.5.1, §7.4), capped at
        ``max_retry_after``, or ``poll_interval`` without the header. ``first`` is a response
        already in hand whose ``Retry-After`` decides the first wait. Raises ``TimeoutError``
        when the status has not changed after ``max_seconds``.
        """
        deadline = time.monotonic() + max_seconds
        last = first
        while True:
            if last is not None:
                if str(last.json_object().get("status")) not in while_status:
                    return last
                delay = last.retry_after()
                delay = self.poll_interval if delay is None else min(delay, self.max_retry_after)
                if time.monotonic() + delay > deadline:
                    raise TimeoutError(
                        f"{url} still {last.json_object().get('status')!r} after {max_seconds}s"
                    )
                await asyncio.sleep(delay)
            last = await self.post_as_get(url)
