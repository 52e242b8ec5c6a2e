"""The Jamf Pro API calls the signal source makes (docs/jamf.md §8.3–§8.5).

Every call carries a bearer token; a 401 drops the token and is retried once with a new one
(Teleport's client and the SDKs do the same). Computers are searched through the newest
``/api/v{4,3,2,1}/computers-inventory`` the server has (older versions answer 404 for newer
paths: each is tried once, and the one that answered is remembered); mobile devices through
``/api/v2/mobile-devices/detail``. Both take an RSQL ``filter`` built by the caller from a
validated value.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from acmegate.policy.sources.jamf.auth import TokenSource
from acmegate.policy.sources.jamf.errors import JamfError, JamfFailure, JamfNotFound
from acmegate.policy.sources.jamf.http import JamfHttp, JamfResponse

COMPUTER_VERSIONS = (4, 3, 2, 1)
MOBILE_DETAIL_PATH = "/api/v2/mobile-devices/detail"
VERSION_PATH = "/api/v1/jamf-pro-version"

# The privilege an API role needs for each path (``x-required-privileges`` of the schema).
_PRIVILEGES = (
    ("computers-inventory", "Read Computers"),
    ("mobile-devices", "Read Mobile Devices"),
    ("departments", "Read Departments"),
    ("buildings", "Read Buildings"),
    ("sites", "Read Sites"),
)


def privilege_for(path: str) -> str | None:
    """The Jamf privilege ``GET path`` requires, when known."""
    return next((privilege for part, privilege in _PRIVILEGES if part in path), None)


@dataclass(frozen=True, slots=True)
class SearchResult:
    """One page of an inventory search: ``total`` counts every match, not just this page."""

    total: int
    results: list[dict[str, Any]]


def _search(path: str, response: JamfResponse) -> SearchResult:
    body = response.body
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        raise JamfError(JamfFailure.PROTOCOL, f"GET {path}: no results list in the answer")
    results = [item for item in body["results"] if isinstance(item, dict)]
    total = body.get("totalCount")
    return SearchResult(total if isinstance(total, int) else len(results), results)


def _params(
    sections: Iterable[str], rsql: str, page_size: int, extra: Sequence[tuple[str, str]] = ()
) -> list[tuple[str, str]]:
    # Sections repeated, as the schema shows (``style: form, explode: true``).
    params = [("section", section) for section in sorted(set(sections))]
    params += [("filter", rsql), ("page", "0"), ("page-size", str(page_size)), *extra]
    return params


class JamfClient:
    """Authenticated GETs against one Jamf Pro server."""

    def __init__(self, http: JamfHttp, tokens: TokenSource) -> None:
        self.http = http
        self.tokens = tokens
        # The computers-inventory version this server answered on, once known.
        self.computer_version: int | None = None

    async def get(self, path: str, params: Sequence[tuple[str, str]] = ()) -> JamfResponse:
        """``GET path`` answered 200; :class:`JamfNotFound` on 404, :class:`JamfError` else."""
        response: JamfResponse | None = None
        for _ in range(2):
            token = await self.tokens.token()
            response = await self.http.request(
                "GET", path, params=params, headers={"Authorization": f"Bearer {token}"}
            )
            if response.status != 401:
                break
            # Expired early, invalidated, or revoked by a keep-alive elsewhere: once more.
            self.tokens.discard(token)
        assert response is not None
        if response.status == 200:
            return response
        if response.status == 401:
            raise JamfError(
                JamfFailure.CREDENTIALS, f"GET {path} answered 401 even with a new token"
            )
        if response.status == 403:
            privilege = privilege_for(path)
            needs = f": the API role needs {privilege!r}" if privilege else ""
            raise JamfError(JamfFailure.PRIVILEGE, f"GET {path} answered 403{needs}")
        if response.status == 404:
            raise JamfNotFound(path)
        raise JamfError(
            JamfFailure.PROTOCOL, f"GET {path} answered HTTP {response.status}: {response.text}"
        )

    async def computers(
        self, rsql: str, sections: Iterable[str], *, page_size: int = 2
    ) -> SearchResult:
        """Computers matching ``rsql`` (docs/jamf.md §8.3), newest API version first."""
        sections = list(sections)
        versions = (self.computer_version,) if self.computer_version else COMPUTER_VERSIONS
        for version in versions:
            path = f"/api/v{version}/computers-inventory"
            try:
                response = await self.get(path, _params(sections, rsql, page_size))
            except JamfNotFound:
                continue
            self.computer_version = version
            return _search(path, response)
        if self.computer_version is not None:
            # The remembered version vanished (Jamf was downgraded?): search them all again.
            self.computer_version = None
            return await self.computers(rsql, sections, page_size=page_size)
        raise JamfError(
            JamfFailure.PROTOCOL, "no computers-inventory endpoint (v4, v3, v2, v1) exists"
        )

    async def mobile_devices(
        self, rsql: str, sections: Iterable[str], *, page_size: int = 2
    ) -> SearchResult:
        """Mobile devices matching ``rsql`` (docs/jamf.md §8.4).

        ``exception-handling=LENIENT`` (11.29+, ignored before): a device with unreadable
        data comes back with that section ``null`` instead of failing the whole request.
        """
        params = _params(sections, rsql, page_size, [("exception-handling", "LENIENT")])
        try:
            response = await self.get(MOBILE_DETAIL_PATH, params)
        except JamfNotFound as exc:
            raise JamfError(
                JamfFailure.PROTOCOL,
                f"GET {MOBILE_DETAIL_PATH} does not exist (mobile device lookups need "
                "Jamf Pro 10.48 or later)",
            ) from exc
        return _search(MOBILE_DETAIL_PATH, response)

    async def name_of(self, kind: str, identifier: str) -> str | None:
        """The name of department/building ``identifier`` (``None`` if Jamf has none)."""
        path = f"/api/v1/{kind}s/{identifier}"
        try:
            response = await self.get(path)
        except JamfNotFound:
            return None
        body = response.body
        name = body.get("name") if isinstance(body, dict) else None
        return name if isinstance(name, str) and name else None

    async def sites(self) -> dict[str, str]:
        """Every site, id → name (``GET /api/v1/sites``)."""
        response = await self.get("/api/v1/sites")
        body = response.body
        if not isinstance(body, list):
            raise JamfError(JamfFailure.PROTOCOL, "GET /api/v1/sites: not a list")
        return {
            str(site["id"]): str(site["name"])
            for site in body
            if isinstance(site, dict) and "id" in site and isinstance(site.get("name"), str)
        }

    async def version(self) -> str | None:
        """The Jamf Pro version (``GET /api/v1/jamf-pro-version``), if the server says."""
        try:
            response = await self.get(VERSION_PATH)
        except JamfNotFound:
            return None
        body = response.body
        version = body.get("version") if isinstance(body, dict) else None
        return version if isinstance(version, str) else None

    async def close(self) -> None:
        """End the token session, then close the connections."""
        try:
            await self.tokens.close()
        finally:
            await self.http.close()
