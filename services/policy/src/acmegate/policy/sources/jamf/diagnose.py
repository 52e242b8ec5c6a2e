"""The guide's "Validate" for a Jamf Pro source: OK with the version, or exactly what failed.

Each step exercises what lookups will need, in the order they need it, so the first failure
names the cause: the connection (name resolution, TLS, refused, timeout), the credentials
(a token), then the privileges of the API role (a search of each inventory that matches
nothing, and the department/building/site names the mapping resolves). A missing privilege
is a 403 (docs/jamf.md §8.2). No step prints a secret, and no device data is read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from acmegate.policy.sources.base import ValidationReport
from acmegate.policy.sources.jamf.errors import JamfError
from acmegate.policy.sources.jamf.http import single_attempts

if TYPE_CHECKING:
    from acmegate.policy.sources.jamf.lookup import JamfSource

# A serial no device has: the probe searches must match nothing.
PROBE_SERIAL = "ACMEGATE-VALIDATE-0"


async def check_connection(source: JamfSource) -> ValidationReport:
    """Run every step, each tried once; the detail is ``OK: …`` or ``<what failed>: <detail>``."""
    try:
        with single_attempts():
            return await _steps(source)
    except JamfError as exc:
        return ValidationReport(source.name, False, str(exc))


async def _steps(source: JamfSource) -> ValidationReport:
    client = source.client
    await client.tokens.token()
    version = await client.version()
    await client.computers(f'hardware.serialNumber=="{PROBE_SERIAL}"', {"GENERAL"}, page_size=1)
    await client.mobile_devices(f'serialNumber=="{PROBE_SERIAL}"', {"GENERAL"}, page_size=1)
    for kind in sorted(source.mapping.name_kinds):
        if kind == "site":
            await client.sites()
        else:
            # An id no object has: 404 proves the privilege, 403 its absence.
            await client.name_of(kind, "0")
    described = f"Jamf Pro {version}" if version else "Jamf Pro (version not reported)"
    return ValidationReport(
        source.name,
        True,
        f"OK: {described} at {client.http.base_url} ({client.tokens.method}; "
        f"computers-inventory v{client.computer_version}, mobile devices v2)",
    )
