"""``acmegate enrollments`` and ``acmegate admin …`` as an operator runs them: output, and exit
codes 0 (done), 1 (the operation failed) and 2 (bad usage: token, name, serial)."""

from __future__ import annotations

import asyncio
import json
import os
import plistlib
import subprocess
import sys

import pytest

from acmegate.testkit.apple_ca import AttestationCA
from tests.e2e.admin.conftest import AdminGateway
from tests.support.gateway import free_port

pytestmark = pytest.mark.e2e


async def acmegate(
    *args: str, env: dict[str, str] | None = None, text: bool = True
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ACMEGATE_ADMIN")}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "acmegate.cli.main", *args],
        capture_output=True,
        text=text,
        env={**environment, **(env or {})},
        timeout=120,
        check=False,
    )


def remote(admin: AdminGateway) -> dict[str, str]:
    return {"ACMEGATE_ADMIN_TOKEN": admin.token, "ACMEGATE_ADMIN_URL": admin.url}


async def test_enrollments_locally_and_through_the_admin_api(
    admin: AdminGateway, attestation_ca: AttestationCA, database_url: str
) -> None:
    issued = await admin.enroll(attestation_ca, "C02E2E00001")
    assert issued.ok
    assert not (await admin.enroll(attestation_ca, "C02NOGROUP")).ok
    serial = format(issued.certificate.serial_number, "x")
    config = str(admin.gateway.files.config_path)

    # Independent invocations run side by side (each one starts a Python).
    local, failed, wrong, no_token, down, nowhere = await asyncio.gather(
        acmegate("enrollments", "--config", config, env={"ACMEGATE_DATABASE_URL": database_url}),
        acmegate("enrollments", "--failed", "--json", env=remote(admin)),
        acmegate("enrollments", "--admin-url", admin.url, env={"ACMEGATE_ADMIN_TOKEN": "nope"}),
        acmegate("enrollments", "--admin-url", admin.url),
        acmegate(
            "enrollments",
            "--admin-url",
            f"http://127.0.0.1:{free_port()}",
            env={"ACMEGATE_ADMIN_TOKEN": admin.token},
        ),
        acmegate("enrollments"),
    )
    assert local.returncode == 0, local.stderr
    lines = local.stdout.splitlines()
    assert lines[0].split()[:4] == ["TIME", "(UTC)", "OUTCOME", "DEVICE"]
    assert "failed" in lines[1] and "C02NOGROUP" in lines[1] and "Cert-Eligible" in lines[1]
    assert "completed" in lines[2] and "C02E2E00001" in lines[2] and serial in lines[2]

    assert failed.returncode == 0, failed.stderr
    [event] = json.loads(failed.stdout)
    assert event["device_serial"] == "C02NOGROUP" and event["outcome"] == "failed"

    assert wrong.returncode == 2
    assert "refused the token in ACMEGATE_ADMIN_TOKEN" in wrong.stderr
    assert no_token.returncode == 2 and "ACMEGATE_ADMIN_TOKEN" in no_token.stderr
    assert down.returncode == 1 and "cannot reach the admin API" in down.stderr
    assert nowhere.returncode == 2 and "--config" in nowhere.stderr


async def test_certificates_through_the_admin_api(
    admin: AdminGateway, attestation_ca: AttestationCA
) -> None:
    issued = await admin.enroll(attestation_ca, "C02E2E00002")
    serial = format(issued.certificate.serial_number, "x")
    env = remote(admin)

    listed, unknown, bad, cas = await asyncio.gather(
        acmegate("admin", "cert", "list", "--device", "C02E2E00002", env=env),
        acmegate("admin", "cert", "show", "abcdef", env=env),
        acmegate("admin", "cert", "revoke", serial, "--reason", "whim", env=env),
        acmegate("admin", "ca", "list", env=env),
    )
    assert listed.returncode == 0, listed.stderr
    assert serial in listed.stdout and "valid" in listed.stdout

    revoked = await acmegate(
        "admin", "cert", "revoke", serial, "--reason", "keyCompromise", env=env
    )
    assert revoked.returncode == 0, revoked.stderr
    assert f"revoked {serial} (keyCompromise)" in revoked.stdout
    shown = await acmegate("admin", "cert", "show", serial, env=env)
    assert shown.returncode == 0
    assert "status:       revoked on" in shown.stdout and "keyCompromise" in shown.stdout
    assert "permanentIdentifier: C02E2E00002" in shown.stdout

    assert unknown.returncode == 2 and "no certificate with serial abcdef" in unknown.stderr
    assert bad.returncode == 2 and "unsupported revocation reason 'whim'" in bad.stderr

    assert cas.returncode == 0 and "devices: " in cas.stdout and "EC P-256" in cas.stdout


async def test_platforms_sources_and_lookups_through_the_admin_api(admin: AdminGateway) -> None:
    env = remote(admin)
    profile, valid, found, missing, unknown = await asyncio.gather(
        acmegate("admin", "platform", "profile", "jamf-macs", env=env, text=False),
        acmegate("admin", "signal-source", "validate", "inventory", env=env),
        acmegate("admin", "lookup", "validate", "inventory-issuance", "C02E2E00001", env=env),
        acmegate("admin", "lookup", "validate", "inventory-issuance", "C02NOTKNOWN", env=env),
        acmegate("admin", "signal-source", "validate", "nope", env=env),
    )
    assert profile.returncode == 0, profile.stderr
    token = plistlib.loads(profile.stdout)["PayloadContent"][0]["ClientIdentifier"]

    rotated = await acmegate("admin", "platform", "rotate-token", "jamf-macs", env=env)
    assert rotated.returncode == 0
    assert "new token for jamf-macs: agt-" in rotated.stdout and token not in rotated.stdout

    assert valid.returncode == 0 and "inventory: OK: 5 devices" in valid.stdout

    assert found.returncode == 0
    assert "Account validation succeeded." in found.stdout and "llama@example.com" in found.stdout
    assert missing.returncode == 1 and "Account validation failed." in missing.stdout
    assert unknown.returncode == 2 and "no signal source named 'nope'" in unknown.stderr
