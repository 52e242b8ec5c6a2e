"""certbot (Debian) obtains, renews and revokes a server certificate: standalone http-01 on
the server's validation port, and dns-01 through --manual-auth-hook setting the TXT record
on the tests' DNS server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.acme_clients import HOOKS, AcmeServer, succeeds, verify_server_chain

pytestmark = [pytest.mark.e2e, pytest.mark.acme_clients]


def certbot(folder: Path, server: AcmeServer, *args: str) -> list[str]:
    return [
        "certbot", *args, "--server", server.directory_url, "--non-interactive",
        "--config-dir", str(folder), "--work-dir", str(folder), "--logs-dir", str(folder),
    ]  # fmt: skip


async def obtain_renew_revoke(
    server: AcmeServer, folder: Path, name: str, challenge: list[str]
) -> None:
    env = server.client_env()
    issue = ["certonly", "--agree-tos", "--register-unsafely-without-email", "-d", name]
    await succeeds(certbot(folder, server, *issue, *challenge), env)
    live = folder / "live" / name
    first = await verify_server_chain(server.root_pem, live / "fullchain.pem", name)

    # certbot renew sleeps up to 8 minutes first when stdin is not a terminal (cron).
    renew = ["renew", "--cert-name", name, "--force-renewal", "--no-random-sleep-on-renew"]
    await succeeds(certbot(folder, server, *renew), env)
    renewed = await verify_server_chain(server.root_pem, live / "fullchain.pem", name)
    assert renewed.serial_number != first.serial_number

    revoke = ["revoke", "--cert-name", name, "--no-delete-after-revoke", "--reason", "superseded"]
    await succeeds(certbot(folder, server, *revoke), env)
    assert await server.revoked(renewed, folder)
    assert not await server.revoked(first, folder)


async def test_certbot_standalone_http01(acme_server: AcmeServer, tmp_path: Path) -> None:
    challenge = [
        "--standalone", "--preferred-challenges", "http",
        "--http-01-address", "127.0.0.1", "--http-01-port", str(acme_server.http_port),
    ]  # fmt: skip
    await obtain_renew_revoke(acme_server, tmp_path / "certbot", "www.example.test", challenge)


async def test_certbot_manual_hook_dns01(acme_server: AcmeServer, tmp_path: Path) -> None:
    challenge = [
        "--manual", "--preferred-challenges", "dns",
        "--manual-auth-hook", str(HOOKS / "certbot-auth"),
        "--manual-cleanup-hook", str(HOOKS / "certbot-auth"),
    ]  # fmt: skip
    await obtain_renew_revoke(acme_server, tmp_path / "certbot", "radius.example.test", challenge)
