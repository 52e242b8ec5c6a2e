"""The error bodies of Jamf Pro, as recorded from the real API (docs/jamf.md §8.2, §8.3)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

OAUTH_ERROR_URI = "https://datatracker.ietf.org/doc/html/rfc6749#section-5.2"


def api_error(
    status: int, code: str | None = None, description: str = "", *, id: str = "0", field: Any = None
) -> web.Response:
    """A Jamf Pro ``ApiError``: ``{"httpStatus", "errors": [{code, description, id, field}]}``.

    Without ``code`` the list is empty (the observed 401 for bad Basic credentials, docs/jamf.md
    §8.2).
    """
    errors = (
        []
        if code is None
        else [{"code": code, "description": description, "id": id, "field": field}]
    )
    return web.json_response({"httpStatus": status, "errors": errors}, status=status)


def invalid_token() -> web.Response:
    """Expired, invalidated or garbage tokens (docs/jamf.md §8.2)."""
    return api_error(401, "INVALID_TOKEN", "Unauthorized")


def forbidden(privilege: str) -> web.Response:
    """A missing privilege (403; the body is not documented, docs/jamf.md §8.2)."""
    return api_error(403, "INVALID_PRIVILEGE", f"Forbidden: requires privilege {privilege}")


def oauth_error(status: int, error: str, description: str | None = None) -> web.Response:
    """RFC 6749 §5.2 style (``OAuthTokenEndpointErrorResponse``), not an ApiError (§1b)."""
    body: dict[str, str] = {"error": error}
    if description is not None:
        body["error_description"] = description
        body["error_uri"] = OAUTH_ERROR_URI
    return web.json_response(body, status=status)


def invalid_id(kind: str, identifier: str) -> web.Response:
    """404 for an id that does not exist (docs/jamf.md §8.3)."""
    return api_error(
        404, "INVALID_ID", f"{kind} with given id does not exist", id=identifier, field=None
    )


def non_numeric_id(identifier: str) -> web.Response:
    """400 for an id that is not a number (docs/jamf.md §8.3)."""
    return api_error(
        400,
        "INVALID_ID",
        "id field must be string of positive numeric value or -1",
        id=identifier,
        field="arg0",
    )
