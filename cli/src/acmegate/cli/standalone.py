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
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import structlog

from acmegate.common.config import Config, Secret
from acmegate.common.config.model import CertificateAuthorityConfig, FileKey

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class DevBootstrap:
    """What ``dev.bootstrap`` creates on the first start because it is missing."""

    # The first CA, if its certificate is missing (its key is a passphrase-protected file).
    ca: CertificateAuthorityConfig | None
    # The admin token file, if missing.
    admin_token: Secret | None
    # The first attestation provider's first root, if missing.
    attestation_root: str | None

    @classmethod
    def plan(cls, config: Config) -> DevBootstrap:
        """What is missing now (nothing when ``dev.bootstrap`` is off)."""
        if not config.dev.bootstrap:
            return cls(None, None, None)
        ca = next(iter(config.certificate_authorities), None)
        if ca is not None and (Path(ca.certificate).exists() or not isinstance(ca.key, FileKey)):
            ca = None
        token = config.admin.token
        if token is None or token.file is None or Path(token.file).exists():
            token = None
        provider = next(iter(config.attestation_providers), None)
        root = provider.roots[0] if provider is not None and provider.roots else None
        if root is not None and Path(root).exists():
            root = None
        return cls(ca, token, root)

    def lines(self) -> list[str]:
        """What will be (or was) created, one line each."""
        lines = []
        if self.ca is not None:
            lines.append(f"a development CA in {Path(self.ca.certificate).parent}")
        if self.admin_token is not None:
            lines.append(f"a development admin token in {self.admin_token.file}")
        if self.attestation_root is not None:
            lines.append(f"a TEST Apple attestation CA in {Path(self.attestation_root).parent}")
        return lines

    def as_if_done(self, config: Config) -> Config:
        """``config`` without what is still to be created, so that the rest can be checked
        today (the CA and the root are made right, by the code that makes them)."""
        cas = [ca for ca in config.certificate_authorities if ca is not self.ca]
        providers = [
            msgspec.structs.replace(
                provider, roots=[root for root in provider.roots if root != self.attestation_root]
            )
            for provider in config.attestation_providers
        ]
        return msgspec.structs.replace(
            config, certificate_authorities=cas, attestation_providers=providers
        )


def bootstrap_dev(config: Config) -> list[str]:
    """Create the dev CA and the test attestation root if missing; what was done, as lines."""
    # The test kit is a development extra (acmegate-cli[dev]), absent from production installs.
    from acmegate.signer.setup.create import init_ca
    from acmegate.testkit.apple_ca import AttestationCA

    plan = DevBootstrap.plan(config)
    if plan.ca is not None:
        assert isinstance(plan.ca.key, FileKey)
        certificate = Path(plan.ca.certificate)
        init_ca(
            certificate.parent,
            name=certificate.stem,
            common_name="acmegate development device CA",
            subject=[("O", "acmegate development")],
            key_type="ec-p256",
            hash="sha256",
            passphrase=_dev_secret(plan.ca.key.passphrase),
            root_common_name="acmegate development root CA",
        )
    if plan.admin_token is not None:
        _dev_secret(plan.admin_token)
    if plan.attestation_root is not None:
        AttestationCA.load_or_generate(Path(plan.attestation_root).parent)
    return [f"created {line}" for line in plan.lines()]


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
    await asyncio.to_thread(Path(data_dir).mkdir, parents=True, exist_ok=True)
    server = await asyncio.to_thread(_pgserver, data_dir)
    exists = await asyncio.to_thread(
        server.psql, "SELECT 1 FROM pg_database WHERE datname = 'acmegate';"
    )
    if "(1 row)" not in exists:
        await asyncio.to_thread(server.psql, "CREATE DATABASE acmegate;")
    uri: str = server.get_uri("acmegate")
    return uri


def _pgserver(data_dir: str) -> Any:
    with warnings.catch_warnings():
        # pgserver (through platformdirs) warns when XDG_RUNTIME_DIR is unset, as in ssh
        # sessions and containers, and uses a folder in /tmp instead: nothing for the person
        # who started the gateway to do.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        import pgserver

        get_server = pgserver.get_server  # type: ignore[attr-defined]
        return get_server(data_dir, cleanup_mode="stop")


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
