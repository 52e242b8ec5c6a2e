from __future__ import annotations

from acmegate.testkit.apple_ca import AttestationCA, LeafClaims
from acmegate.testkit.device import SimulatedDevice
from tests.support.gateway import Gateway


async def test_smoke(gateway: Gateway, attestation_ca: AttestationCA) -> None:
    device = SimulatedDevice(
        gateway.directory_url, "C02E2E00001", LeafClaims.macos("C02E2E00001"), attestation_ca
    )
    try:
        result = await device.enroll()
    finally:
        await device.close()
    print(result.problems)
    assert result.ok, result.problems
