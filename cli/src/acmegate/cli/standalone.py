"""``acmegate standalone``: all four services in one process, on the in-process bus, with an
embedded PostgreSQL (the ``pgserver`` wheel) unless a database URL is given.

With ``dev.bootstrap`` it also creates what a first run needs under ``dev.dir``: a private CA at
the paths the first configured CA names, and a TEST Apple attestation root at the path the
first attestation provider trusts — loudly, because such a gateway trusts simulated devices.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
from pathlib import Path

import structlog

from acmegate.common.config import Config, Secret
from acmegate.common.config.model import FileKey

log = structlog.get_logger(__name__)


def bootstrap_dev(config: Config) -> list[str]:
    """Create the dev CA and the test attestation root if missing; what was done, as lines."""
    # The test kit is a development extra (acmegate-cli[dev]), absent from production installs.
    from acmegate.signer.setup.create import init_ca
    from acmegate.testkit.apple_ca import AttestationCA

    done: list[str] = []
    for ca in config.certificate_authorities[:1]:
        certificate = Path(ca.certificate)
        if certificate.exists() or not isinstance(ca.key, FileKey):
            continue
        passphrase = _dev_secret(ca.key.passphrase)
        init_ca(
            certificate.parent,
            name=certificate.stem,
            common_name="acmegate development device CA",
            subject=[("O", "acmegate development")],
            key_type="ec-p256",
            hash="sha256",
            passphrase=passphrase,
            root_common_name="acmegate development root CA",
        )
        done.append(f"created a development CA in {certificate.parent}")
    token = config.admin.token
    if token is not None and token.file is not None and not Path(token.file).exists():
        _dev_secret(token)
        done.append(f"created a development admin token in {token.file}")
    for provider in config.attestation_providers[:1]:
        if provider.roots and not Path(provider.roots[0]).exists():
            directory = Path(provider.roots[0]).parent
            AttestationCA.load_or_generate(directory)
            done.append(f"created a TEST Apple attestation CA in {directory}")
    return done


def _dev_secret(secret: Secret) -> str:
    """The secret's value, first writing a random one to its file if the file is missing."""
    if secret.file is not None and not Path(secret.file).exists():
        path = Path(secret.file)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32) + "\n", encoding="utf-8")
        path.chmod(0o600)
    return secret.reveal()


def untrusted_attestation_roots(config: Config) -> list[str]:
    """Providers that trust something else than Apple's real root (dev or test roots)."""
    return [p.name for p in config.attestation_providers if p.roots]


def warn_dev(config: Config) -> None:
    names = untrusted_attestation_roots(config)
    if not names:
        return
    bar = "!" * 78
    print(
        f"\n{bar}\n!! DEVELOPMENT MODE: attestation provider(s) {', '.join(names)} trust a"
        f"\n!! root that is not Apple's. Simulated devices signed by that root can enroll."
        f"\n!! Never run this configuration in production (see examples/production.yaml).\n{bar}\n",
        file=sys.stderr,
    )


async def embedded_database(data_dir: str) -> str:
    """Start (or reuse) the embedded PostgreSQL in ``data_dir``; its URL for database acmegate."""
    import pgserver

    await asyncio.to_thread(Path(data_dir).mkdir, parents=True, exist_ok=True)
    get_server = pgserver.get_server  # type: ignore[attr-defined]
    server = await asyncio.to_thread(get_server, data_dir, cleanup_mode="stop")
    exists = await asyncio.to_thread(
        server.psql, "SELECT 1 FROM pg_database WHERE datname = 'acmegate';"
    )
    if "(1 row)" not in exists:
        await asyncio.to_thread(server.psql, "CREATE DATABASE acmegate;")
    uri: str = server.get_uri("acmegate")
    return uri


def banner(config: Config, frontend: object) -> list[str]:
    """What the person who started the gateway needs to know next."""
    directory = str(getattr(frontend, "directory_url", ""))
    lines = [f"acmegate standalone is running. ACME directory: {directory}"]
    admin_url = getattr(frontend, "admin_url", None)
    if admin_url:
        lines.append(f"  admin API: {admin_url}/api/v1 (dashboard: {admin_url}/dashboard)")
        token = config.admin.token
        if token is not None and token.file is not None:
            lines.append(f"  admin token: in {Path(token.file).resolve()}")
    for ca in config.certificate_authorities[:1]:
        if ca.chain:
            lines.append(f"  root CA certificate: {Path(ca.chain[-1]).resolve()}")
    if untrusted_attestation_roots(config):
        ca_dir = Path(config.attestation_providers[0].roots[0]).resolve().parent
        lines += [
            "  enroll a simulated device:",
            f"    acmegate simulate-device --directory {directory} --serial C02DEMO0001 "
            f"--attestation-ca {ca_dir}",
        ]
    return lines
