"""Device management platforms (the guide's "Device Management Platform") and their
enrollment tokens.

A platform's profile sends as ``ClientIdentifier`` either an enrollment token the gateway
minted for it, or the device's serial/UDID through a Jamf variable (``$SERIALNUMBER``). A token
is recognisable by its prefix, unguessable (192 bits), free of ``/`` (so it is a valid
``permanent-identifier``, draft §3), revocable and rotatable; an order naming a token records
the platform, and the device's identity then comes from the attestation alone.
"""

from __future__ import annotations

import secrets
from datetime import datetime

import asyncpg

from acmegate.common.config import Config
from acmegate.common.config.model import DeviceManagementPlatformConfig
from acmegate.common.errors import AcmeError, ErrorKind, not_found
from acmegate.common.ids import b64url
from acmegate.frontend.db import platforms as platform_db
from acmegate.frontend.db.platforms import PlatformToken

TOKEN_PREFIX = "agt-"  # noqa: S105 - a recognisable prefix, not a secret


def is_enrollment_token(value: str) -> bool:
    """True for a value shaped like a token this gateway mints."""
    return value.startswith(TOKEN_PREFIX)


def new_token() -> str:
    return TOKEN_PREFIX + b64url(secrets.token_bytes(24))


def platform_config(config: Config, name: str) -> DeviceManagementPlatformConfig:
    for platform in config.device_management_platforms:
        if platform.name == name:
            return platform
    known = ", ".join(p.name for p in config.device_management_platforms) or "none"
    raise not_found(f"no device management platform named {name!r} (configured: {known})")


async def live_token(pool: asyncpg.Pool, config: Config, name: str, now: datetime) -> PlatformToken:
    """The platform's live token, minted on first use."""
    platform_config(config, name)
    return await platform_db.ensure(pool, name, new_token(), now)


async def rotate_token(
    pool: asyncpg.Pool, config: Config, name: str, now: datetime
) -> PlatformToken:
    """A new token for the platform; its previous tokens stop working at once."""
    platform_config(config, name)
    return await platform_db.rotate(pool, name, new_token(), now)


async def revoke_tokens(pool: asyncpg.Pool, config: Config, name: str, now: datetime) -> int:
    platform_config(config, name)
    return await platform_db.revoke(pool, name, now)


def unknown_token() -> AcmeError:
    # The token itself is not repeated: it is the platform's credential.
    return AcmeError(
        ErrorKind.REJECTED_IDENTIFIER, "unknown or revoked enrollment token; ask for a new profile"
    )
