"""The shell clients with hook scripts, uacme and dehydrated (Debian), obtain, renew and
revoke a server certificate over dns-01, their hooks setting the TXT record on the tests'
DNS server (tests/e2e/clients/hooks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.acme_clients import HOOKS, AcmeServer, succeeds, verify_server_chain

pytestmark = [pytest.mark.e2e, pytest.mark.acme_clients]


def trusting_directory(server: AcmeServer) -> list[str]:
    """A prefix that lets uacme trust the directory's TLS certificate (pebble's).

    uacme has no CA option and Debian builds it on libcurl-gnutls, which reads only the
    system bundle; so it runs in a private user and mount namespace (unshare(1), no
    privilege) where that bundle is the pebble listener's certificate."""
    if server.tls_ca is None:
        return []
    swap = 'mount --bind "$0" /etc/ssl/certs/ca-certificates.crt && exec "$@"'
    return ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", swap, str(server.tls_ca)]


async def test_uacme_hook_dns01(acme_server: AcmeServer, tmp_path: Path) -> None:
    name, folder = "mail.example.test", tmp_path / "uacme"
    env = acme_server.client_env()

    def uacme(*args: str) -> list[str]:
        common = ["-a", acme_server.directory_url, "-c", str(folder), "-t", "EC", "-y", "-v"]
        return [*trusting_directory(acme_server), "uacme", *common, *args]

    await succeeds(uacme("new"), env)
    hook = ["-h", str(HOOKS / "uacme-hook")]
    await succeeds(uacme(*hook, "issue", name), env)
    chain = folder / name / "cert.pem"
    first = await verify_server_chain(acme_server.root_pem, chain, name)

    await succeeds(uacme(*hook, "--force", "issue", name), env)
    renewed = await verify_server_chain(acme_server.root_pem, chain, name)
    assert renewed.serial_number != first.serial_number

    await succeeds(uacme("revoke", str(chain)), env)
    assert await acme_server.revoked(renewed, folder)
    assert not await acme_server.revoked(first, folder)


async def test_dehydrated_hook_dns01(acme_server: AcmeServer, tmp_path: Path) -> None:
    name, folder = "ldap.example.test", tmp_path / "dehydrated"
    folder.mkdir()
    config = folder / "config"
    config.write_text(
        f'CA="{acme_server.directory_url}"\n'
        'CHALLENGETYPE="dns-01"\n'
        f'HOOK="{HOOKS / "dehydrated-hook"}"\n'
        f'BASEDIR="{folder}"\n'
        'KEY_ALGO="prime256v1"\n'
    )
    env = acme_server.client_env()

    def dehydrated(*args: str) -> list[str]:
        return ["dehydrated", "--config", str(config), *args]

    await succeeds(dehydrated("--register", "--accept-terms"), env)
    await succeeds(dehydrated("--cron", "--domain", name), env)
    live = folder / "certs" / name
    first = await verify_server_chain(acme_server.root_pem, live / "fullchain.pem", name)

    await succeeds(dehydrated("--cron", "--domain", name, "--force"), env)
    renewed = await verify_server_chain(acme_server.root_pem, live / "fullchain.pem", name)
    assert renewed.serial_number != first.serial_number

    await succeeds(dehydrated("--revoke", str(live / "cert.pem")), env)
    assert await acme_server.revoked(renewed, folder)
    assert not await acme_server.revoked(first, folder)
