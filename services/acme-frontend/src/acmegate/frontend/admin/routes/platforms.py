"""``/api/v1/platforms``: device management platforms, their profiles and enrollment tokens."""

from __future__ import annotations

import asyncio
import re

from aiohttp import web

from acmegate.common.config import SecretUnavailable
from acmegate.common.config.model import DeviceManagementPlatformConfig
from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.frontend.admin.context import ADMIN
from acmegate.frontend.admin.params import path_text
from acmegate.frontend.admin.render import json_response
from acmegate.frontend.admin.views import Platform, TokenRotation
from acmegate.frontend.db.platforms import PlatformToken, list_tokens
from acmegate.frontend.platforms import live_token, platform_config, rotate_token
from acmegate.frontend.profiles import build_profile, load_profile_signer

# Apple's media type for configuration profiles.
MOBILECONFIG = "application/x-apple-aspen-config"
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def platform_json(
    platform: DeviceManagementPlatformConfig, token: PlatformToken | None
) -> Platform:
    settings = platform.profile
    return Platform(
        name=platform.name,
        description=platform.description,
        type=platform.type,
        vendor=platform.vendor,
        client_identifier=settings.client_identifier,
        subject=settings.subject,
        key_size=settings.key_size,
        signed=bool(settings.signing_certificate and settings.signing_key),
        profile_path=f"/api/v1/platforms/{platform.name}/profile",
        token_created_at=token.created_at if token is not None else None,
    )


async def list_platforms(request: web.Request) -> web.Response:
    frontend = request.app[ADMIN].frontend
    live = {t.platform: t for t in await list_tokens(frontend.pool) if t.revoked_at is None}
    return json_response(
        {
            "platforms": [
                platform_json(p, live.get(p.name))
                for p in frontend.config.device_management_platforms
            ]
        }
    )


async def download_profile(request: web.Request) -> web.Response:
    """The platform's ``.mobileconfig`` (signed when the platform has a signing certificate)."""
    frontend = request.app[ADMIN].frontend
    platform = platform_config(frontend.config, path_text(request, "name"))
    settings = platform.profile
    token = None
    if settings.client_identifier == "token":
        token = (
            await live_token(frontend.pool, frontend.config, platform.name, frontend.clock.now())
        ).token
    signer = None
    if settings.signing_certificate and settings.signing_key:
        try:
            signer = await asyncio.to_thread(
                load_profile_signer, settings.signing_certificate, settings.signing_key.reveal()
            )
        except (OSError, ValueError, SecretUnavailable) as exc:
            raise AcmeError(
                ErrorKind.SERVER_INTERNAL,
                f"the profile-signing certificate or key of {platform.name!r} is unusable: {exc}",
            ) from exc
    # It reads the trust files: off the event loop.
    profile = await asyncio.to_thread(
        build_profile,
        platform,
        directory_url=frontend.linker.directory,
        token=token,
        signer=signer,
    )
    filename = _FILENAME_UNSAFE.sub("_", platform.name) + ".mobileconfig"
    return web.Response(
        body=profile.data,
        content_type=MOBILECONFIG,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def rotate_platform_token(request: web.Request) -> web.Response:
    """A new enrollment token; the previous ones stop working at once."""
    frontend = request.app[ADMIN].frontend
    token = await rotate_token(
        frontend.pool, frontend.config, path_text(request, "name"), frontend.clock.now()
    )
    return json_response(TokenRotation(token.platform, token.token, token.created_at))
