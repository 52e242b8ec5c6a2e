"""The `acmegate` command as a newcomer and an operator use it."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from acmegate.testkit.apple_ca import AttestationCA
from tests.support import metrics
from tests.support.gateway import Gateway, free_port
from tests.support.openssl import verify_client_chain

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def acmegate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "acmegate.cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )


async def test_simulate_device_prints_a_certificate_that_openssl_accepts(
    gateway: Gateway, attestation_ca: AttestationCA, tmp_path: Path
) -> None:
    ca_dir = gateway.files.config_path.parent / "attestation-ca"
    done = await asyncio.to_thread(
        acmegate,
        "simulate-device",
        "--directory",
        gateway.directory_url,
        "--serial",
        "C02E2E00001",
        "--attestation-ca",
        str(ca_dir),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "clientAuth" in done.stdout and "C02E2E00001" in done.stdout
    assert verify_client_chain(gateway.files.root_pem, done.stdout, tmp_path).strip().endswith("OK")


async def test_simulate_device_writes_the_key_and_certificate_for_eap_tls_tools(
    gateway: Gateway, tmp_path: Path
) -> None:
    # eapol_test and wpa_supplicant want the client key and certificate as files.
    ca_dir = gateway.files.config_path.parent / "attestation-ca"
    key_out, cert_out = tmp_path / "keys" / "device.key", tmp_path / "device.pem"
    done = await asyncio.to_thread(
        acmegate,
        "simulate-device",
        "--directory", gateway.directory_url,
        "--serial", "C02E2E00002",
        "--attestation-ca", str(ca_dir),
        "--key-out", str(key_out),
        "--cert-out", str(cert_out),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"key:         {key_out}" in done.stdout
    assert key_out.stat().st_mode & 0o777 == 0o600
    key = serialization.load_pem_private_key(key_out.read_bytes(), None)
    leaf, issuing = x509.load_pem_x509_certificates(cert_out.read_bytes())
    assert leaf.public_key() == key.public_key()
    assert issuing.subject == leaf.issuer
    pubkeys = [
        subprocess.run(  # noqa: ASYNC221 (short openssl runs)
            command, capture_output=True, text=True, check=False
        ).stdout
        for command in (
            ["openssl", "pkey", "-in", str(key_out), "-pubout"],
            ["openssl", "x509", "-in", str(cert_out), "-noout", "-pubkey"],
        )
    ]
    assert pubkeys[0] == pubkeys[1] and "PUBLIC KEY" in pubkeys[0]
    assert (
        verify_client_chain(gateway.files.root_pem, cert_out.read_text(), tmp_path).strip()[-2:]
        == "OK"
    )

    # A refused enrollment writes nothing.
    refused = tmp_path / "refused.key"
    done = await asyncio.to_thread(
        acmegate,
        "simulate-device",
        "--directory", gateway.directory_url,
        "--serial", "C02UNMANAGED",
        "--attestation-ca", str(ca_dir),
        "--key-out", str(refused),
        "--cert-out", str(tmp_path / "refused.pem"),
    )  # fmt: skip
    assert done.returncode == 1
    assert not refused.exists() and not (tmp_path / "refused.pem").exists()


async def test_simulate_device_reports_a_refusal_with_exit_code_1(
    gateway: Gateway, tmp_path: Path
) -> None:
    ca_dir = gateway.files.config_path.parent / "attestation-ca"
    done = await asyncio.to_thread(
        acmegate,
        "simulate-device",
        "--directory",
        gateway.directory_url,
        "--serial",
        "C02E2E00001",
        "--attestation-ca",
        str(ca_dir),
        "--mode",
        "wrong-root",
    )
    assert done.returncode == 1
    assert "badAttestationStatement" in done.stdout
    assert "BEGIN CERTIFICATE" not in done.stdout


def test_an_unreachable_gateway_is_a_clear_error() -> None:
    done = acmegate(
        "simulate-device",
        "--directory",
        f"http://127.0.0.1:{free_port()}/acme/directory",
        "--serial",
        "X",
    )
    assert done.returncode == 2
    assert "cannot reach" in done.stderr and "Traceback" not in done.stderr


def test_config_check_names_the_bad_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("server:\n  port: eighty\n")
    done = acmegate("config", "check", "--config", str(bad))
    assert done.returncode == 2
    assert "$.server.port" in done.stderr and "Traceback" not in done.stderr


async def test_migrate_needs_only_the_database_url_and_is_idempotent(database_url: str) -> None:
    # The Kubernetes migrate Job runs `acmegate migrate` with no configuration file.
    first = await asyncio.to_thread(
        acmegate, "migrate", env={"ACMEGATE_DATABASE_URL": database_url}
    )
    assert first.returncode == 0, first.stderr
    assert "applied " in first.stdout
    again = await asyncio.to_thread(
        acmegate, "migrate", env={"ACMEGATE_DATABASE_URL": database_url}
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "database is up to date"


def test_migrate_without_a_database_says_what_is_missing() -> None:
    env = {k: v for k, v in os.environ.items() if k != "ACMEGATE_DATABASE_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "acmegate.cli.main", "migrate"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "ACMEGATE_DATABASE_URL" in done.stderr and "Traceback" not in done.stderr


def test_ca_init_needs_the_passphrase_in_the_environment(tmp_path: Path) -> None:
    done = acmegate(
        "ca",
        "init",
        "--out",
        str(tmp_path),
        "--name",
        "devices",
        "--common-name",
        "Devices CA",
        env={"ACMEGATE_CA_PASSPHRASE": ""},
    )
    assert done.returncode == 2
    assert "ACMEGATE_CA_PASSPHRASE" in done.stderr


def test_ca_init_creates_a_ca_and_prints_its_configuration(tmp_path: Path) -> None:
    done = acmegate(
        "ca",
        "init",
        "--out",
        str(tmp_path),
        "--name",
        "devices",
        "--common-name",
        "Devices CA",
        "--key-type",
        "rsa2048",
        "--hash",
        "sha256",
        "--subject",
        "O=Example",
        env={"ACMEGATE_CA_PASSPHRASE": "s3cret-passphrase"},
    )
    assert done.returncode == 0, done.stderr
    assert "certificate_authorities:" in done.stdout
    assert "s3cret" not in done.stdout + done.stderr
    verified = subprocess.run(
        ["openssl", "verify", "-CAfile", str(tmp_path / "root.pem"), str(tmp_path / "devices.pem")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.stdout.strip().endswith("OK")


@pytest.mark.slow
def test_standalone_starts_with_embedded_postgres_and_enrolls_a_device(tmp_path: Path) -> None:
    """The README's first command, on a copy of the dev configuration."""
    work = tmp_path / "gateway"
    shutil.copytree(ROOT / "examples", work / "examples")
    port = free_port()
    config = (work / "examples" / "dev.yaml").read_text()
    pki_port = free_port()
    config = (
        config.replace("port: 8443", f"port: {port}")
        .replace("http://127.0.0.1:8443", f"http://127.0.0.1:{port}")
        .replace("port: 9443", f"port: {free_port()}")
        .replace("port: 8088", f"port: {pki_port}")
        .replace("http://127.0.0.1:8088", f"http://127.0.0.1:{pki_port}")
    )
    health_port = free_port()
    config = config.replace("port: 9464", f"port: {health_port}")
    (work / "examples" / "dev.yaml").write_text(config)
    env = {k: v for k, v in os.environ.items() if k != "ACMEGATE_DATABASE_URL"}
    env.pop("XDG_RUNTIME_DIR", None)  # pgserver's warning about it must not reach the user
    process = subprocess.Popen(
        [sys.executable, "-m", "acmegate.cli.main", "standalone", "--config", "examples/dev.yaml"],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert f"http://127.0.0.1:{port}/acme/directory" in banner, banner
        rest = [process.stdout.readline() for _ in range(6)]
        assert any("dashboard" in line for line in rest), rest
        assert f"  health and metrics: http://127.0.0.1:{health_port}/metrics\n" in rest, rest
        assert not any("/../" in line for line in rest), rest
        done = acmegate(
            "simulate-device",
            "--directory",
            f"http://127.0.0.1:{port}/acme/directory",
            "--serial",
            "C02DEMO0001",
            "--attestation-ca",
            str(work / "var/dev/attestation-ca"),
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert (
            verify_client_chain(work / "var/dev/ca/root.pem", done.stdout, tmp_path)
            .strip()
            .endswith("OK")
        )
        # The operator's view of that enrollment.
        _, samples = asyncio.run(metrics.scrape(f"http://127.0.0.1:{health_port}/metrics"))
        assert metrics.total(samples, "acmegate_enrollments_total", outcome="issued") == 1
        assert metrics.total(samples, "acmegate_certificates_issued_total", ca="devices") == 1
        # The README's `acmegate profile NAME` works on the dev configuration, loudly.
        profile = subprocess.run(
            [sys.executable, "-m", "acmegate.cli.main", "profile", "jamf", "--config",
             "examples/dev.yaml"],
            cwd=work, env=env, capture_output=True, timeout=120, check=False,
        )  # fmt: skip
        assert profile.returncode == 0, profile.stderr
        assert b"<key>DirectoryURL</key>" in profile.stdout
        assert b"WARNING" in profile.stderr and b"http://" in profile.stderr
        serial = re.search(r"serial:\s+([0-9a-f]+)", done.stdout)
        assert serial is not None, done.stdout

        # The inventory commands find the standalone's embedded database by themselves.
        def local(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "acmegate.cli.main", *args, "--config", "examples/dev.yaml"],
                cwd=work, env=env, capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip

        migrated = local("migrate")  # the embedded database, found like the others
        assert migrated.stdout.strip() == "database is up to date", migrated.stderr
        listed = local("cert", "list", "--device", "C02DEMO0001")
        assert listed.returncode == 0 and serial[1] in listed.stdout, listed.stdout + listed.stderr
        revoked = local("cert", "revoke", serial[1], "--reason", "keyCompromise")
        assert revoked.returncode == 0, revoked.stdout + revoked.stderr
        for _ in range(50):
            crl = local("crl", "show", "devices")
            assert crl.returncode == 0, crl.stdout + crl.stderr
            if serial[1] in crl.stdout:
                break
            time.sleep(0.2)
        assert f"{serial[1]}  " in crl.stdout and "keyCompromise" in crl.stdout, crl.stdout
        # The commands left the gateway's database running: another device enrolls.
        again = acmegate(
            "simulate-device", "--directory", f"http://127.0.0.1:{port}/acme/directory",
            "--serial", "DMQDEMO0002", "--attestation-ca", str(work / "var/dev/attestation-ca"),
        )  # fmt: skip
        assert again.returncode == 0, again.stdout + again.stderr
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert "DEVELOPMENT MODE" in stderr
    assert "XDG_RUNTIME_DIR" not in stderr
    assert process.returncode == 0, stderr[-2000:]
