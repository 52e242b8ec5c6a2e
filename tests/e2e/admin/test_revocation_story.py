"""One story for certificates and revocation: ``acmegate cert …`` through a running gateway's
admin API (``--admin-url``) or on its database (``--config``, maintenance) prints the same
table, the same text and the same JSON; ``acmegate admin cert …`` is the same command."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Coroutine
from typing import Any

import pytest

from acmegate.testkit.apple_ca import AttestationCA
from tests.e2e.admin.conftest import AdminGateway
from tests.e2e.admin.test_cli import acmegate, remote
from tests.support.gateway import free_port

pytestmark = pytest.mark.e2e


async def test_both_ways_print_the_same(
    admin: AdminGateway, attestation_ca: AttestationCA, database_url: str
) -> None:
    issued = await admin.enroll(attestation_ca, "C02E2E00001")
    assert issued.ok and issued.certificate is not None
    serial = format(issued.certificate.serial_number, "x")
    local = ["--config", str(admin.gateway.files.config_path)]
    db = {"ACMEGATE_DATABASE_URL": database_url}
    api = ["--admin-url", admin.url]
    token = {"ACMEGATE_ADMIN_TOKEN": admin.token}

    def pair(*command: str) -> list[Coroutine[Any, Any, subprocess.CompletedProcess[str]]]:
        return [acmegate(*command, *local, env=db), acmegate(*command, *api, env=token)]

    results = await asyncio.gather(
        *pair("cert", "list"),
        *pair("cert", "list", "--json"),
        *pair("cert", "show", serial),
        *pair("cert", "show", serial, "--json"),
        acmegate("admin", "cert", "show", serial, env=remote(admin)),
    )
    for done in results:
        assert done.returncode == 0, done.stdout + done.stderr
    texts = [done.stdout for done in results]
    assert texts[0] == texts[1] and serial in texts[0] and "SERIAL" in texts[0]
    assert json.loads(texts[2]) == json.loads(texts[3])
    assert texts[4] == texts[5] == texts[8]
    assert "enrollment policy: managed-apple-devices" in texts[4]
    assert json.loads(texts[6]) == json.loads(texts[7])

    # Revoked through the gateway; the second revocation, on the database, changes nothing
    # and says so the way the gateway does.
    first = await acmegate("cert", "revoke", serial, "--reason", "keyCompromise", *api, env=token)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"revoked {serial} (keyCompromise), issued by CA devices\n")
    again = await asyncio.gather(
        acmegate("cert", "revoke", serial, "--reason", "superseded", *local, env=db),
        acmegate("cert", "revoke", serial, "--reason", "superseded", *api, env=token),
    )
    assert again[0].returncode == again[1].returncode == 0
    assert again[0].stdout == again[1].stdout
    assert (
        "already revoked" in again[0].stdout
        and "(keyCompromise); nothing changed" in again[0].stdout
    )


async def test_the_command_says_where_to_find_the_certificates() -> None:
    nowhere, unreachable = await asyncio.gather(
        acmegate("cert", "list"),
        acmegate(
            "cert",
            "list",
            "--admin-url",
            f"http://127.0.0.1:{free_port()}",
            env={"ACMEGATE_ADMIN_TOKEN": "t"},
        ),
    )
    assert nowhere.returncode == 2
    assert "--admin-url" in nowhere.stderr and "--config" in nowhere.stderr
    assert unreachable.returncode == 1 and "cannot reach the admin API" in unreachable.stderr
    assert "Traceback" not in nowhere.stderr + unreachable.stderr
