"""When the admin listener starts, and that ``acmegate run`` services answer it over RabbitMQ."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
import yaml

from acmegate.cli.compose import running
from acmegate.common.config import SecretUnavailable, load_config
from acmegate.frontend.service import FrontendService
from acmegate.testkit.apple_ca import AttestationCA
from tests.e2e.admin.conftest import TOKEN_ENV, AdminGateway, admin_config
from tests.support.gateway import distributed_gateway

pytestmark = pytest.mark.e2e


async def reachable(url: str) -> bool:
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(url + "/api/v1/openapi.json") as response,
        ):
            return response.status == 200
    except aiohttp.ClientConnectionError:
        return False


async def test_without_a_token_the_frontend_serves_acme_but_no_admin_listener(
    tmp_path: Path, attestation_ca: AttestationCA, database_url: str
) -> None:
    files, url = admin_config(tmp_path / "gw", attestation_ca)
    raw = yaml.safe_load(files.config_path.read_text())
    del raw["admin"]["token"]
    files.config_path.write_text(yaml.safe_dump(raw))
    config = load_config(files.config_path)
    async with running(config, ["frontend"], database=database_url, in_process=True) as state:
        frontend = state.services["frontend"]
        assert isinstance(frontend, FrontendService) and frontend.admin_url is None
        assert not await reachable(url)
        async with aiohttp.ClientSession() as session, session.get(files.directory_url) as got:
            assert got.status == 200


async def test_a_token_whose_variable_is_missing_stops_the_frontend(
    tmp_path: Path,
    attestation_ca: AttestationCA,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    files, _ = admin_config(tmp_path / "gw", attestation_ca)
    config = load_config(files.config_path)
    with pytest.raises(SecretUnavailable, match=rf"\$\.admin\.token: .*{TOKEN_ENV}"):
        async with running(config, ["frontend"], database=database_url, in_process=True):
            pass


async def test_services_run_apart_answer_the_admin_api_over_rabbitmq(
    tmp_path: Path,
    attestation_ca: AttestationCA,
    database_url: str,
    amqp_server_url: str,
    bus_namespace: str,
    admin_token: str,
) -> None:
    files, url = admin_config(tmp_path / "gw", attestation_ca, namespace=bus_namespace)
    async with distributed_gateway(files, database_url, amqp_server_url):
        admin = AdminGateway(None, url, admin_token)  # type: ignore[arg-type]
        status, body = await admin.get("/api/v1/certificate-authorities")
        assert status == 200, body
        assert body["certificate_authorities"][0]["name"] == "devices"
        status, body = await admin.post("/api/v1/signal-sources/inventory/validate")
        assert status == 200 and body["ok"] is True
        status, body = await admin.get("/api/v1/certificates/abcdef")
        assert status == 404 and "abcdef" in body["detail"]
