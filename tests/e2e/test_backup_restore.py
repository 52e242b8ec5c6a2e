"""The restore drill of docs/operations.md, as an operator runs it: back a gateway up with
deploy/backup/acmegate-backup.sh, restore it with acmegate-restore.sh into an empty database
and another folder, and start the restored gateway: it knows its devices, accounts, orders and
certificates, and keeps issuing."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from acmegate.signer.db.inventory import find_certificate
from acmegate.testkit.apple_ca import AttestationCA, LeafClaims
from acmegate.testkit.device import SimulatedDevice
from tests.conftest import fresh_database
from tests.support.gateway import GatewayFiles, gateway_config, running_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
BACKUP = Path(__file__).resolve().parents[2] / "deploy" / "backup"

if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
    pytest.skip("the drill needs PostgreSQL's client tools (pg_dump, pg_restore, psql)")


@pytest.fixture
async def empty_database(postgres_url: str) -> AsyncIterator[str]:
    """A second empty database for the restore."""
    async with fresh_database(postgres_url) as url:
        yield url


async def run(*command: str | Path) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_a_restored_gateway_knows_what_it_issued_and_keeps_issuing(
    tmp_path: Path, attestation_ca: AttestationCA, database_url: str, empty_database: str
) -> None:
    site = tmp_path / "site" / "etc" / "acmegate"
    files = gateway_config(site, attestation_ca)
    serial = "C02E2E00001"
    device = SimulatedDevice(files.directory_url, serial, LeafClaims.macos(serial), attestation_ca)
    try:
        async with running_gateway(files, database_url):
            first = await device.enroll()
        assert first.ok and first.order_url and first.certificate_url, first.problems

        backup = tmp_path / "backup"
        done = await run(BACKUP / "acmegate-backup.sh", database_url, backup, site)
        assert done.returncode == 0, done.stdout + done.stderr
        assert sorted(p.name for p in backup.iterdir()) == [
            "SHA256SUMS",
            "acmegate.dump",
            "files.tar",
        ]
        # A second restore into a database that holds the gateway is refused.
        refused = await run(BACKUP / "acmegate-restore.sh", backup, database_url, tmp_path / "x")
        assert refused.returncode == 1 and "empty database" in refused.stderr

        restored_root = tmp_path / "restored"
        done = await run(BACKUP / "acmegate-restore.sh", backup, empty_database, restored_root)
        assert done.returncode == 0, done.stdout + done.stderr
        restored_site = restored_root / site.relative_to("/")
        restored = GatewayFiles(
            restored_site / "acmegate.yaml",
            restored_site / "ca" / "root.pem",
            restored_site / "ca" / "devices.pem",
            files.port,
            files.pki_port,
        )
        async with running_gateway(restored, empty_database) as gateway:
            # The device's account, order and certificate, as before the disaster.
            order = (await device.session.post_as_get(first.order_url)).json_object()
            assert order["status"] == "valid"
            chain = await device.session.post_as_get(first.certificate_url)
            assert chain.text == first.certificate_chain_pem
            assert first.chain
            issued = format(first.chain[0].serial_number, "x")
            record = await find_certificate(gateway.pool, issued)
            assert record is not None and record.device_serial == serial

            # And it goes on issuing, with serials of its own.
            again = await device.enroll()
            assert again.ok, again.problems
            assert again.chain[0].serial_number != first.chain[0].serial_number
    finally:
        await device.close()
