"""``acmegate crl sync``: a folder of CRLs that FreeRADIUS (``ca_path``) and OpenSSL read, kept
current from a timer: PEM files with the hash links ``openssl rehash`` makes, a CRL checked
against its CA before it is written, never replaced by an older one."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from acmegate.cli.main import main
from acmegate.testkit.apple_ca import AttestationCA, LeafClaims
from acmegate.testkit.device import SimulatedDevice
from tests.support.gateway import Gateway, free_port

pytestmark = pytest.mark.e2e


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def openssl(*args: str) -> str:
    done = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    return (done.stdout + done.stderr).strip()


async def enroll(gateway: Gateway, attestation_ca: AttestationCA, folder: Path) -> Path:
    device = SimulatedDevice(
        gateway.directory_url, "C02E2E00001", LeafClaims.macos("C02E2E00001"), attestation_ca
    )
    try:
        result = await device.enroll()
    finally:
        await device.close()
    assert result.ok and result.certificate is not None, result.problems
    path = folder / "leaf.pem"
    path.write_bytes(result.certificate.public_bytes(serialization.Encoding.PEM))
    return path


def links(folder: Path) -> dict[str, str]:
    return {p.name: os.readlink(p) for p in folder.iterdir() if p.is_symlink()}


async def crl_number(gateway: Gateway, above: int = 0) -> int:
    for _ in range(100):
        row = await gateway.pool.fetchval(
            "SELECT max(number) FROM pki.crls WHERE ca_name = 'devices'"
        )
        if row is not None and row > above:
            return int(row)
        await asyncio.sleep(0.1)
    raise AssertionError(f"no CRL above number {above}")


async def test_the_folder_has_what_openssl_rehash_makes_and_follows_revocations(
    gateway: Gateway, attestation_ca: AttestationCA, tmp_path: Path, database_url: str
) -> None:
    leaf = await enroll(gateway, attestation_ca, tmp_path)
    first = await crl_number(gateway)
    folder = tmp_path / "crls"
    url = gateway.files.pki_url
    done = await asyncio.to_thread(
        cli, "crl", "sync", "--url", url, "--ca", "devices", "--out", str(folder)
    )
    assert done.returncode == 0, done.stderr
    assert f"devices: CRL number {first}, 0 revoked" in done.stdout and "written" in done.stdout
    crl_file = folder / "devices.crl.pem"
    issuer_hash = openssl("crl", "-hash", "-noout", "-in", str(crl_file))
    assert links(folder) == {f"{issuer_hash}.r0": "devices.crl.pem"}
    # The same links `openssl rehash` makes of the same files.
    copy = tmp_path / "rehashed"
    copy.mkdir()
    shutil.copy(crl_file, copy / "devices.crl.pem")
    openssl("rehash", str(copy))
    assert links(copy) == links(folder)

    def verify() -> str:
        return openssl(
            "verify", "-crl_check", "-CApath", str(folder), "-CAfile", str(gateway.files.root_pem),
            "-untrusted", str(gateway.files.ca_pem), str(leaf),
        )  # fmt: skip

    assert verify().endswith(": OK")
    again = await asyncio.to_thread(
        cli, "crl", "sync", "--url", url, "--ca", "devices", "--out", str(folder)
    )
    assert again.returncode == 0 and "unchanged" in again.stdout

    serial = format(x509.load_pem_x509_certificate(leaf.read_bytes()).serial_number, "x")
    env = {"ACMEGATE_DATABASE_URL": database_url}
    config = str(gateway.files.config_path)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        revoked = await asyncio.to_thread(
            cli, "cert", "revoke", serial, "--config", config, "--reason", "keyCompromise"
        )
        assert revoked.returncode == 0, revoked.stderr
        await crl_number(gateway, above=first)
        # From the database, as well as over HTTP.
        synced = await asyncio.to_thread(
            cli, "crl", "sync", "--config", config, "--out", str(folder)
        )
    assert synced.returncode == 0, synced.stderr
    assert "1 revoked" in synced.stdout
    assert "certificate revoked" in verify()
    assert links(folder) == {f"{issuer_hash}.r0": "devices.crl.pem"}


@contextlib.asynccontextmanager
async def serving(files: dict[str, bytes]) -> AsyncIterator[str]:
    """A stand-in PKI listener that serves fixed bytes (a lagging or hostile source)."""

    async def handle(request: web.Request) -> web.Response:
        body = files.get(request.path)
        return web.Response(body=body) if body is not None else web.Response(status=404)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_an_older_crl_or_one_the_ca_did_not_sign_is_never_written(
    gateway: Gateway, tmp_path: Path
) -> None:
    first = await crl_number(gateway)
    folder = tmp_path / "crls"
    url = gateway.files.pki_url
    assert (
        await asyncio.to_thread(
            cli, "crl", "sync", "--url", url, "--ca", "devices", "--out", str(folder)
        )
    ).returncode == 0
    old = (folder / "devices.crl.pem").read_bytes()
    ca_der = x509.load_pem_x509_certificate(gateway.files.ca_pem.read_bytes()).public_bytes(
        serialization.Encoding.DER
    )
    # A newer CRL (the signer makes one on request), synced; then a source that still serves
    # the older one.
    signer = gateway.running.services["signer"]
    authority = signer.authorities["devices"]  # type: ignore[attr-defined]
    await signer.crl_publisher.regenerate(authority, force=True)  # type: ignore[attr-defined]
    newer = await crl_number(gateway, above=first)
    assert (
        await asyncio.to_thread(
            cli, "crl", "sync", "--url", url, "--ca", "devices", "--out", str(folder)
        )
    ).returncode == 0
    current = (folder / "devices.crl.pem").read_bytes()
    assert current != old
    old_der = x509.load_pem_x509_crl(old).public_bytes(serialization.Encoding.DER)
    async with serving({"/crl/devices.crl": old_der, "/ca/devices.cer": ca_der}) as lagging:
        done = await asyncio.to_thread(
            cli, "crl", "sync", "--url", lagging, "--ca", "devices", "--out", str(folder)
        )
    assert done.returncode == 1
    assert f"holds CRL number {newer}, newer than number {first}" in done.stderr
    assert (folder / "devices.crl.pem").read_bytes() == current

    # A CRL with the CA's name, signed by another key.
    key = ec.generate_private_key(ec.SECP256R1())
    genuine = x509.load_pem_x509_crl(current)
    fake = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(genuine.issuer)
        .last_update(genuine.last_update_utc)
        .next_update(genuine.next_update_utc or genuine.last_update_utc)
        .add_extension(x509.CRLNumber(newer + 100), critical=False)
        .sign(key, hashes.SHA256())
    )
    async with serving(
        {
            "/crl/devices.crl": fake.public_bytes(serialization.Encoding.DER),
            "/ca/devices.cer": ca_der,
        }
    ) as hostile:
        done = await asyncio.to_thread(
            cli, "crl", "sync", "--url", hostile, "--ca", "devices", "--out", str(folder)
        )
    assert done.returncode == 1
    assert "signature does not verify with the CA certificate; not written" in done.stderr
    assert (folder / "devices.crl.pem").read_bytes() == current

    for args, message in (
        (("--url", url), "--url needs --ca NAME"),
        (("--url", "ftp://x", "--ca", "devices"), "--url must be an http(s) URL"),
        (("--url", url, "--ca", "nope"), f"{url}/crl/nope.crl: HTTP 404"),
        ((), "give --url"),
    ):
        done = await asyncio.to_thread(cli, "crl", "sync", "--out", str(folder), *args)
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)
