"""Two signer processes on one host (issue #12 item 6): with ``pki.reuse_port`` both serve the
PKI port; with ``pki.listen: false`` the second serves none; without either the second exits
with the port taken."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import aiohttp
import pytest
import yaml

from acmegate.testkit.apple_ca import AttestationCA
from tests.support.gateway import GatewayFiles, gateway_config, start_service, stop_service

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def second_config(files: GatewayFiles, pki: dict[str, object]) -> GatewayFiles:
    """The same gateway's configuration with ``pki`` merged into its pki section."""
    config = yaml.safe_load(files.config_path.read_text())
    config["pki"].update(pki)
    path = files.config_path.with_name("second.yaml")
    path.write_text(yaml.safe_dump(config))
    return dataclasses.replace(files, config_path=path)


async def _ca_list(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/ca/none.cer") as response:
        return response.status


# (first, second): both share the port, or the second serves none.
CASES = [({"reuse_port": True}, {"reuse_port": True}), ({}, {"listen": False})]


@pytest.mark.parametrize(("first_pki", "second_pki"), CASES, ids=["reuse_port", "listen_off"])
async def test_two_signers_run_on_one_host(
    tmp_path: Path,
    attestation_ca: AttestationCA,
    database_url: str,
    amqp_server_url: str,
    bus_namespace: str,
    first_pki: dict[str, object],
    second_pki: dict[str, object],
) -> None:
    files = gateway_config(tmp_path / "gateway", attestation_ca, namespace=bus_namespace)
    env = {"ACMEGATE_DATABASE_URL": database_url, "ACMEGATE_AMQP_URL": amqp_server_url}
    first = await start_service("signer", second_config(files, first_pki), env)
    try:
        second = await start_service("signer", second_config(files, second_pki), env)
        try:
            assert second[0].process.returncode is None
            # The port answers (from either process when shared).
            assert await _ca_list(files.pki_url) in (200, 404)
        finally:
            await stop_service(*second)
    finally:
        await stop_service(*first)
