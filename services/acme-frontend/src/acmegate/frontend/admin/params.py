"""Reading the admin API's inputs: query parameters, path segments and JSON bodies.

Every problem is a 400 that names the parameter or field (``limit: …``, ``$.reason: …``).
Text is refused if PostgreSQL or the bus could not carry it (NUL, lone surrogates), so a
strange input is a clear 400, never a 500 deeper down.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from aiohttp import web

from acmegate.common.errors import malformed
from acmegate.common.json_input import JsonInputError, decode_json

T = TypeVar("T")
C = TypeVar("C", bound=str)


def clean_text(name: str, value: str) -> str:
    """``value`` if it is text the database and the bus can store, else a 400."""
    if "\x00" in value:
        raise malformed(f"{name}: must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise malformed(f"{name}: is not valid Unicode text") from exc
    return value


def path_text(request: web.Request, name: str) -> str:
    return clean_text(name, request.match_info[name])


def query_text(request: web.Request, name: str) -> str | None:
    """An optional text filter (absent or empty: no filter)."""
    value = request.query.get(name)
    if not value:
        return None
    return clean_text(name, value)


def query_choice(request: web.Request, name: str, choices: Sequence[C]) -> C | None:
    """One of ``choices`` (as given there, e.g. an enum member), or None when absent."""
    value = request.query.get(name)
    if value is None:
        return None
    for choice in choices:
        if value == choice:
            return choice
    raise malformed(f"{name}: must be one of {', '.join(choices)}")


def query_int(request: web.Request, name: str, *, default: int, minimum: int, maximum: int) -> int:
    value = request.query.get(name)
    if value is None:
        return default
    try:
        number = int(value, 10)
    except ValueError:
        raise malformed(f"{name}: must be an integer") from None
    if not minimum <= number <= maximum:
        raise malformed(f"{name}: must be between {minimum} and {maximum}")
    return number


async def json_body(request: web.Request, shape: type[T], *, required: bool = True) -> T:
    """The request's JSON body decoded as ``shape`` (a msgspec Struct); an empty body is
    ``shape()`` (every field at its default) unless ``required``."""
    body = await request.read()
    if not body.strip():
        if not required:
            return shape()
        raise malformed("request body: a JSON object is required")
    try:
        return decode_json(body, type=shape)
    except JsonInputError as exc:
        # msgspec names the field: "Expected `str`, got `int` - at `$.reason`".
        raise malformed(f"request body: {exc}") from None


QUERY_NAMES = web.AppKey("query_names", dict[tuple[str, str], frozenset[str]])


def query_names(document: Mapping[str, Any]) -> dict[tuple[str, str], frozenset[str]]:
    """(method, path template) → the query parameters the OpenAPI document declares."""
    names: dict[tuple[str, str], frozenset[str]] = {}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            names[(method.upper(), path)] = frozenset(
                p["name"] for p in operation.get("parameters", ()) if p["in"] == "query"
            )
    return names


@web.middleware
async def query_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Refuse query parameters an operation does not declare (a typo is not a silent no-op)."""
    resource = request.match_info.route.resource
    if resource is not None:
        method = "GET" if request.method == "HEAD" else request.method
        known = request.app[QUERY_NAMES].get((method, resource.canonical))
        if known is not None:
            unknown = sorted(set(request.query) - known)
            if unknown:
                allowed = ", ".join(sorted(known)) or "none"
                raise malformed(f"{unknown[0]}: unknown query parameter (accepted: {allowed})")
    return await handler(request)
