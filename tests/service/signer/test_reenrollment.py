"""Re-enrollment in the signer (docs/profiles.md): supersession revokes only the same device's
older certificates of the same policy; a renewal window refuses an early second certificate
but never a redelivered order."""

from __future__ import annotations

from datetime import timedelta

import msgspec

from acmegate.common.config.model import Config, EnrollmentPolicyConfig
from acmegate.common.messages import EnrollmentRecord, RevokeCertificates
from acmegate.signer.db.inventory import find_certificate
from acmegate.signer.service import SignerService
from tests.service.signer.conftest import SignerWorld
from tests.service.signer.test_signer_service import FIRST, REVOKE, _order


def _config(world: SignerWorld, **settings: object) -> Config:
    policies = [
        EnrollmentPolicyConfig(
            name="devices",
            certificate_authority="issuing",
            certificate_template="device",
            **settings,  # type: ignore[arg-type]
        ),
        EnrollmentPolicyConfig(
            name="vpn",
            certificate_authority="issuing",
            certificate_template="device",
            previous_certificates="revoke",
        ),
    ]
    return msgspec.structs.replace(world.config, enrollment_policies=policies)


async def _issue(
    world: SignerWorld, signer: SignerService, order_id: str, device: str, policy: str = "devices"
) -> str:
    order = _order(order_id, device)
    assert order.record is not None
    record: EnrollmentRecord = msgspec.structs.replace(order.record, enrollment_policy=policy)
    await signer.on_finalize(msgspec.structs.replace(order, record=record), FIRST)
    serial = (await world.results.next()).certificate_serial
    assert serial is not None
    return serial


async def _status(world: SignerWorld, serial: str) -> tuple[str, str | None]:
    found = await find_certificate(world.pool, serial)
    assert found is not None
    return found.status, found.revocation_reason


def _supersede(serial: str) -> RevokeCertificates:
    return RevokeCertificates(correlation_id="s", reason="superseded", superseded_by=serial)


async def test_supersession_revokes_only_the_devices_older_certificates_of_the_policy(
    world: SignerWorld,
) -> None:
    signer = await world.start_signer(
        config_override=_config(world, previous_certificates="revoke")
    )
    a1 = await _issue(world, signer, "a1", "DEVICE-A")
    vpn = await _issue(world, signer, "v1", "DEVICE-A", policy="vpn")
    b1 = await _issue(world, signer, "b1", "DEVICE-B")
    a2 = await _issue(world, signer, "a2", "DEVICE-A")

    await signer.on_revoke(_supersede(a2), REVOKE)
    await signer.on_revoke(_supersede(a2), REVOKE)  # a second download changes nothing
    assert await _status(world, a1) == ("revoked", "superseded")
    assert await _status(world, a2) == ("valid", None)
    assert await _status(world, vpn) == ("valid", None)  # another policy's certificate
    assert await _status(world, b1) == ("valid", None)  # another device

    # Downloading an older certificate again never revokes a newer one.
    a3 = await _issue(world, signer, "a3", "DEVICE-A")
    await signer.on_revoke(_supersede(a2), REVOKE)
    assert await _status(world, a3) == ("valid", None)


async def test_with_keep_a_download_revokes_nothing(world: SignerWorld) -> None:
    signer = await world.start_signer(config_override=_config(world))
    a1 = await _issue(world, signer, "a1", "DEVICE-A")
    a2 = await _issue(world, signer, "a2", "DEVICE-A")
    await signer.on_revoke(_supersede(a2), REVOKE)
    assert await _status(world, a1) == ("valid", None)


async def test_a_renewal_window_refuses_an_early_certificate_but_not_a_redelivery(
    world: SignerWorld,
) -> None:
    signer = await world.start_signer(config_override=_config(world, renewal_window="1h"))
    a1 = await _issue(world, signer, "a1", "DEVICE-A")

    # The same order delivered again is answered with its certificate, not refused.
    assert await _issue(world, signer, "a1", "DEVICE-A") == a1

    world.clock.at += timedelta(minutes=10)
    await signer.on_finalize(_order("a2", "DEVICE-A"), FIRST)
    refused = await world.results.next()
    assert refused.certificate_serial is None and refused.problem is not None
    assert refused.problem.kind == "rateLimited"
    assert refused.problem.retry_after is not None
    assert 3000 - 5 <= refused.problem.retry_after <= 3000 + 5
    assert "renewal window (1h)" in refused.problem.detail

    # Other devices and other policies are not held back; after the window the device is.
    await _issue(world, signer, "b1", "DEVICE-B")
    await _issue(world, signer, "v1", "DEVICE-A", policy="vpn")
    world.clock.at += timedelta(minutes=51)
    await _issue(world, signer, "a3", "DEVICE-A")
