"""External Account Binding (RFC 8555 §7.3.4) end to end: keys issued through the admin API,
accounts created by certbot's ``acme`` library with them, and every way a binding is refused.
Devices keep enrolling through the open device directory while EAB is required."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from acme import challenges, client, messages
from cryptography.hazmat.primitives.asymmetric import ec
from josepy.jwa import ES256
from josepy.jwk import JWKEC

from acmegate.common.ids import b64url
from acmegate.testkit.apple_ca import AttestationCA
from tests.e2e.admin.conftest import TOKEN_ENV, AdminGateway
from tests.support.certbot_client import enroll_with_certbot_acme
from tests.support.challtestsrv import ChallTestSrv
from tests.support.gateway import free_port, gateway_config, running_gateway
from tests.support.openssl import verify_client_chain
from tests.support.server_certs import add_server_policy, challenge_of, deadline, server_csr

pytestmark = pytest.mark.e2e

URN = "urn:ietf:params:acme:error:"


@pytest.fixture
async def eab_gateway(
    tmp_path: Path,
    attestation_ca: AttestationCA,
    database_url: str,
    responder: ChallTestSrv,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[AdminGateway]:
    token = secrets.token_urlsafe(24)
    monkeypatch.setenv(TOKEN_ENV, token)
    port = free_port()
    files = gateway_config(
        tmp_path / "gateway",
        attestation_ca,
        overrides={
            "admin": {"host": "127.0.0.1", "port": port, "token": {"env": TOKEN_ENV}},
            "acme": {"external_account_required": True},
        },
    )
    add_server_policy(files.config_path, responder)
    async with running_gateway(files, database_url) as gateway:
        yield AdminGateway(gateway, f"http://127.0.0.1:{port}", token)


def server_directory(admin: AdminGateway) -> str:
    return admin.gateway.directory_url.replace("/acme/directory", "/acme/server/directory")


async def new_key(admin: AdminGateway, description: str = "radius") -> dict[str, Any]:
    status, key = await admin.post("/api/v1/eab-keys", {"description": description})
    assert status == 200, key
    return dict(key)


def register(
    directory_url: str, key_id: str | None, hmac_key: str | None
) -> tuple[client.ClientV2, messages.RegistrationResource]:
    """newAccount through certbot's library, with an EAB when ``key_id`` is given."""
    account_key = ec.generate_private_key(ec.SECP256R1())
    net = client.ClientNetwork(JWKEC(key=account_key), alg=ES256, user_agent="acmegate-tests/eab")
    directory = client.ClientV2.get_directory(directory_url, net)
    binding = None
    if key_id is not None and hmac_key is not None:
        binding = messages.ExternalAccountBinding.from_data(
            account_public_key=JWKEC(key=account_key.public_key()),
            kid=key_id,
            hmac_key=hmac_key,
            directory=directory,
        )
    acme = client.ClientV2(directory, net)
    registration = acme.new_account(
        messages.NewRegistration.from_data(
            terms_of_service_agreed=True, external_account_binding=binding
        )
    )
    return acme, registration


async def refused(directory_url: str, key_id: str | None, hmac_key: str | None) -> messages.Error:
    with pytest.raises(messages.Error) as caught:
        await asyncio.to_thread(register, directory_url, key_id, hmac_key)
    return caught.value


async def test_an_account_bound_by_an_eab_key_gets_a_server_certificate(
    eab_gateway: AdminGateway, responder: ChallTestSrv, tmp_path: Path
) -> None:
    directory = await asyncio.to_thread(requests.get, server_directory(eab_gateway), timeout=10)
    assert directory.json()["meta"]["externalAccountRequired"] is True
    assert f'<{server_directory(eab_gateway)}>;rel="index"' in directory.headers["Link"]
    key = await new_key(eab_gateway, "radius.example.test")
    assert key["key_id"].startswith("eab-") and len(key["hmac_key"]) == 43  # 256-bit, base64url

    acme, registration = await asyncio.to_thread(
        register, server_directory(eab_gateway), key["key_id"], key["hmac_key"]
    )
    order = await asyncio.to_thread(acme.new_order, server_csr(["radius.example.test"]))
    challb = challenge_of(order.authorizations[0], challenges.HTTP01)
    response, validation = challb.response_and_validation(acme.net.key)
    await responder.add_http01(challb.chall.encode("token"), validation)
    await asyncio.to_thread(acme.answer_challenge, challb, response)
    final = await asyncio.to_thread(acme.poll_and_finalize, order, deadline())

    verdict = verify_client_chain(
        eab_gateway.gateway.files.root_pem, final.fullchain_pem, tmp_path, purpose="sslserver"
    )
    assert verdict.endswith(": OK"), verdict
    # The admin API shows which account the key bound, and never the HMAC key again.
    status, listing = await eab_gateway.get("/api/v1/eab-keys")
    assert status == 200
    (listed,) = [k for k in listing["eab_keys"] if k["key_id"] == key["key_id"]]
    assert listed["status"] == "bound"
    assert registration.uri.endswith("/acct/" + listed["account_id"])
    assert key["hmac_key"] not in str(listing)


async def test_the_server_directory_refuses_an_account_without_eab(
    eab_gateway: AdminGateway,
) -> None:
    error = await refused(server_directory(eab_gateway), None, None)
    assert error.typ == URN + "externalAccountRequired"


async def test_a_wrong_hmac_is_unauthorized_and_consumes_nothing(
    eab_gateway: AdminGateway,
) -> None:
    key = await new_key(eab_gateway)
    wrong = "A" * 43
    error = await refused(server_directory(eab_gateway), key["key_id"], wrong)
    assert error.typ == URN + "unauthorized"
    assert "does not verify" in (error.detail or "")
    # The key is still unused: the right HMAC binds it afterwards.
    await asyncio.to_thread(register, server_directory(eab_gateway), key["key_id"], key["hmac_key"])


async def test_a_used_key_binds_no_second_account(eab_gateway: AdminGateway) -> None:
    key = await new_key(eab_gateway)
    await asyncio.to_thread(register, server_directory(eab_gateway), key["key_id"], key["hmac_key"])
    error = await refused(server_directory(eab_gateway), key["key_id"], key["hmac_key"])
    assert error.typ == URN + "unauthorized"
    assert "already bound" in (error.detail or "")


async def test_a_revoked_key_binds_nothing(eab_gateway: AdminGateway) -> None:
    key = await new_key(eab_gateway)
    status, reply = await eab_gateway.post(f"/api/v1/eab-keys/{key['key_id']}/revoke")
    assert status == 200 and reply["revoked_now"] is True
    assert reply["eab_key"]["status"] == "revoked"
    error = await refused(server_directory(eab_gateway), key["key_id"], key["hmac_key"])
    assert error.typ == URN + "unauthorized"
    assert "revoked" in (error.detail or "")
    status, again = await eab_gateway.post(f"/api/v1/eab-keys/{key['key_id']}/revoke")
    assert status == 200 and again["revoked_now"] is False
    status, missing = await eab_gateway.post("/api/v1/eab-keys/eab-nope/revoke")
    assert status == 404 and missing["type"] == "about:blank"


async def test_devices_still_enroll_while_server_accounts_need_eab(
    eab_gateway: AdminGateway, attestation_ca: AttestationCA, tmp_path: Path
) -> None:
    """Apple's ACME client cannot send an EAB: the device directory stays open, and an account
    made there gets device certificates but no server certificate."""
    device_directory = eab_gateway.gateway.directory_url
    directory = await asyncio.to_thread(requests.get, device_directory, timeout=10)
    assert directory.json()["meta"]["externalAccountRequired"] is False
    assert f'<{device_directory}>;rel="index"' in directory.headers["Link"]
    chain = await asyncio.to_thread(
        enroll_with_certbot_acme, device_directory, "C02E2E00001", attestation_ca
    )
    verdict = verify_client_chain(eab_gateway.gateway.files.root_pem, chain, tmp_path)
    assert verdict.endswith(": OK"), verdict

    acme, _ = await asyncio.to_thread(register, device_directory, None, None)
    with pytest.raises(messages.Error) as caught:
        await asyncio.to_thread(acme.new_order, server_csr(["open.example.test"]))
    assert caught.value.typ == URN + "externalAccountRequired"


async def acmegate(admin: AdminGateway, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ACMEGATE_ADMIN")}
    environment |= {"ACMEGATE_ADMIN_TOKEN": admin.token, "ACMEGATE_ADMIN_URL": admin.url}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "acmegate.cli.main", "admin", "eab", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


async def test_the_cli_creates_lists_and_revokes_keys(eab_gateway: AdminGateway) -> None:
    created = await acmegate(eab_gateway, "create", "--description", "vpn.example.test")
    assert created.returncode == 0, created.stderr
    key_id = created.stdout.split("key id:")[1].split()[0]
    hmac_key = created.stdout.split("HMAC key:")[1].split()[0]
    # The printed pair is what a client needs: it binds an account.
    await asyncio.to_thread(register, server_directory(eab_gateway), key_id, hmac_key)

    listed = await acmegate(eab_gateway, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (key,) = [k for k in json.loads(listed.stdout) if k["key_id"] == key_id]
    assert key["status"] == "bound" and key["description"] == "vpn.example.test"
    assert hmac_key not in listed.stdout
    table = await acmegate(eab_gateway, "list")
    assert key_id in table.stdout and "bound" in table.stdout

    revoked = await acmegate(eab_gateway, "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert f"EAB key {key_id} revoked" in revoked.stdout
    unknown = await acmegate(eab_gateway, "revoke", "eab-unknown")
    assert unknown.returncode == 2 and "no EAB key" in unknown.stderr


async def test_server_names_eab_keys_admit_only_the_accounts_of_those_keys(
    tmp_path: Path,
    attestation_ca: AttestationCA,
    database_url: str,
    responder: ChallTestSrv,
) -> None:
    """A policy naming an EAB key admits its account at newOrder and again at finalize (the
    policy service sees the key id in the finalize message); another key's account is
    refused the name."""
    files = gateway_config(
        tmp_path / "gateway",
        attestation_ca,
        overrides={"acme": {"external_account_required": True}},
    )
    add_server_policy(files.config_path, responder, domains=["*.example.test"])
    config = yaml.safe_load(files.config_path.read_text())
    keyed = {
        "name": "radius-team",
        "certificate_authority": "devices",
        "certificate_template": "server",
        "server_names": {"domains": ["radius.keyed.test"], "eab_keys": ["eab-radius-team"]},
    }
    config["enrollment_policies"].insert(0, keyed)
    files.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    async with running_gateway(files, database_url) as gateway:
        await gateway.pool.execute(
            "INSERT INTO acme.eab_keys (id, created_at) VALUES ('eab-radius-team', now()), "
            "('eab-other-team', now())"
        )
        frontend = gateway.running.services["frontend"].frontend  # type: ignore[attr-defined]
        directory = gateway.directory_url.replace("/acme/directory", "/acme/server/directory")

        def hmac_of(key_id: str) -> str:
            return b64url(frontend.eab.hmac_key(key_id))

        team, _ = await asyncio.to_thread(
            register, directory, "eab-radius-team", hmac_of("eab-radius-team")
        )
        order = await asyncio.to_thread(team.new_order, server_csr(["radius.keyed.test"]))
        challb = challenge_of(order.authorizations[0], challenges.HTTP01)
        response, validation = challb.response_and_validation(team.net.key)
        await responder.add_http01(challb.chall.encode("token"), validation)
        await asyncio.to_thread(team.answer_challenge, challb, response)
        final = await asyncio.to_thread(team.poll_and_finalize, order, deadline())
        assert final.body.status == messages.STATUS_VALID

        other, _ = await asyncio.to_thread(
            register, directory, "eab-other-team", hmac_of("eab-other-team")
        )
        with pytest.raises(messages.Error) as caught:
            await asyncio.to_thread(other.new_order, server_csr(["radius.keyed.test"]))
        assert caught.value.typ == URN + "rejectedIdentifier"
        assert "not allowed server certificates" in str(caught.value)
        # The other key's account still gets the names every account may have.
        await asyncio.to_thread(other.new_order, server_csr(["open.example.test"]))
