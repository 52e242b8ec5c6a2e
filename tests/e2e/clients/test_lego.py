"""lego (Debian) obtains, renews and revokes a server certificate with each challenge:
http-01 and tls-alpn-01 answered by lego itself on the server's validation ports, dns-01
through its ``exec`` provider setting the TXT record on the tests' DNS server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.acme_clients import HOOKS, AcmeServer, succeeds, verify_server_chain

pytestmark = [pytest.mark.e2e, pytest.mark.acme_clients]


async def obtain_renew_revoke(
    server: AcmeServer, folder: Path, name: str, challenge: list[str], env: dict[str, str]
) -> None:
    env = server.client_env() | env

    def lego(*args: str) -> list[str]:
        return [
            "lego", "--server", server.directory_url, "--accept-tos",
            "--email", "admin@example.test", "--path", str(folder), "--key-type", "ec256",
            "--domains", name, *challenge, *args,
        ]  # fmt: skip

    await succeeds(lego("run"), env)
    chain = folder / "certificates" / f"{name}.crt"
    first = await verify_server_chain(server.root_pem, chain, name)

    # Renew whatever is left of the lifetime (--days more than any), now (no cron sleep).
    await succeeds(lego("renew", "--days", "100000", "--no-random-sleep"), env)
    renewed = await verify_server_chain(server.root_pem, chain, name)
    assert renewed.serial_number != first.serial_number

    await succeeds(lego("revoke", "--keep"), env)
    assert await server.revoked(renewed, folder)
    assert not await server.revoked(first, folder)


async def test_lego_http01(acme_server: AcmeServer, tmp_path: Path) -> None:
    challenge = ["--http", "--http.port", f"127.0.0.1:{acme_server.http_port}"]
    await obtain_renew_revoke(acme_server, tmp_path / "lego", "web.example.test", challenge, {})


async def test_lego_tls_alpn01(acme_server: AcmeServer, tmp_path: Path) -> None:
    challenge = ["--tls", "--tls.port", f"127.0.0.1:{acme_server.tls_port}"]
    await obtain_renew_revoke(acme_server, tmp_path / "lego", "vpn.example.test", challenge, {})


async def test_lego_exec_dns01(acme_server: AcmeServer, tmp_path: Path) -> None:
    # The TXT record is on the tests' DNS server, which is no authoritative server of any
    # zone: lego asks it directly and skips the authoritative propagation check.
    challenge = [
        "--dns", "exec", "--dns.resolvers", acme_server.responder.nameserver,
        "--dns.disable-cp",
    ]  # fmt: skip
    env = {"EXEC_PATH": str(HOOKS / "lego-exec"), "EXEC_POLLING_INTERVAL": "1"}
    await obtain_renew_revoke(acme_server, tmp_path / "lego", "proxy.example.test", challenge, env)
