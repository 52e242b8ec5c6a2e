"""pytest fixtures for simulated Apple devices.

Use them from a conftest with ``from tests.support.device_fixtures import attestation_ca,
make_device`` (or list this module in the root conftest's ``pytest_plugins``). The gateway
under test must trust ``attestation_ca.root`` (write it with ``attestation_ca.save(dir)`` and
point the attestation provider's ``roots`` at ``dir / "root.pem"``).

    async def test_genuine_mac_enrolls(gateway_url, make_device):
        device = make_device(gateway_url + "/acme/directory", "C02ABC123XYZ")
        result = await device.enroll()
        assert result.ok, format_result(result)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

import aiohttp
import pytest

from acmegate.testkit.apple_ca import AttestationCA, LeafClaims
from acmegate.testkit.device import SimulatedDevice


class DeviceFactory(Protocol):
    """``make_device(directory_url, serial, **kw)``; ``kw`` goes to :class:`SimulatedDevice`
    (``client_identifier`` defaults to ``serial``, ``claims`` to a Mac with that serial, or
    pass ``udid=``/``os="ios"``/``user_enrollment=True`` to shape the claims)."""

    def __call__(self, directory_url: str, serial: str, **kw: Any) -> SimulatedDevice: ...


@pytest.fixture(scope="session")
def attestation_ca() -> AttestationCA:
    """One test "Apple Enterprise Attestation" root + sub CA for the whole session."""
    return AttestationCA.generate()


@pytest.fixture
async def make_device(attestation_ca: AttestationCA) -> AsyncIterator[DeviceFactory]:
    """A factory of :class:`SimulatedDevice` sharing one aiohttp session (closed afterwards)."""
    async with aiohttp.ClientSession() as http:

        def factory(directory_url: str, serial: str, **kw: Any) -> SimulatedDevice:
            udid = kw.pop("udid", None)
            os_name = kw.pop("os", "macos")
            user_enrollment = kw.pop("user_enrollment", False)
            claims = kw.pop("claims", None)
            if claims is None:
                claims = (
                    LeafClaims.ios(serial, udid)
                    if os_name == "ios"
                    else LeafClaims.macos(serial, udid)
                )
                if user_enrollment:
                    claims = claims.user_enrollment()
            kw.setdefault("attestation_ca", attestation_ca)
            kw.setdefault("session", http)
            client_identifier = kw.pop("client_identifier", serial)
            return SimulatedDevice(directory_url, client_identifier, claims, **kw)

        yield factory
