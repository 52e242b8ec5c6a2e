"""The PKI commands as an operator uses them: ``ca list``, ``ca init`` into a token,
``cert list`` / ``cert show`` (the guide's "completed" view), ``cert revoke``, ``crl show``
with reasons."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from acmegate.cli.main import main
from acmegate.testkit.apple_ca import AttestationCA, LeafClaims
from acmegate.testkit.device import SimulatedDevice
from tests.support.gateway import PASSPHRASE, Gateway
from tests.support.softhsm import softhsm

pytestmark = pytest.mark.e2e


def acmegate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "acmegate.cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )


async def enrolled_serial(gateway: Gateway, attestation_ca: AttestationCA, serial: str) -> str:
    device = SimulatedDevice(
        gateway.directory_url,
        serial,
        LeafClaims.macos(serial, "00006030-000651690A84001C"),
        attestation_ca,
        subject_alt_name={"dNSName": f"{serial.lower()}.corp.example"},
    )
    try:
        result = await device.enroll()
    finally:
        await device.close()
    assert result.ok and result.certificate is not None, result.problems
    return format(result.certificate.serial_number, "x")


def test_ca_list_shows_chain_validity_key_and_storage(gateway: Gateway) -> None:
    config = str(gateway.files.config_path)
    done = acmegate("ca", "list", "--config", config)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert out.startswith("devices\n")
    assert (
        "chain:     CN=E2E Devices CA,O=acmegate tests → CN=E2E Devices CA Root,O=acmegate tests"
        in out
    )
    assert "key:       EC P-256" in out
    assert "storage:   encrypted file " in out and "devices.key (passphrase from file " in out
    assert "key check: the key matches the certificate" in out
    assert f"CRL:       {gateway.files.pki_url}/crl/devices.crl" in out
    assert f"OCSP:      {gateway.files.pki_url}/ocsp/devices" in out
    assert PASSPHRASE not in out

    listed = json.loads(acmegate("ca", "list", "--config", config, "--json").stdout)
    assert listed[0]["name"] == "devices" and listed[0]["key_matches"] is True


async def test_cert_list_show_revoke_and_crl_show(
    gateway: Gateway,
    attestation_ca: AttestationCA,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ACMEGATE_DATABASE_URL", database_url)
    serial = await enrolled_serial(gateway, attestation_ca, "C02E2E00001")
    other = await enrolled_serial(gateway, attestation_ca, "C02E2E00002")
    config = str(gateway.files.config_path)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        # In this process (an interpreter start per command would triple the test's time);
        # test_pki_revocation.py runs `cert revoke` as a child process.
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([*args, "--config", config])
        return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())

    listed = await asyncio.to_thread(cli, "cert", "list", "--device", "C02E2E00001")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == [
        "SERIAL",
        "STATUS",
        "CA",
        "DEVICE",
        "NOT",
        "AFTER",
        "TEMPLATE",
        "ACCOUNT",
    ]
    assert len(lines) == 2 and lines[1].startswith(serial) and " valid " in lines[1]
    every = json.loads((await asyncio.to_thread(cli, "cert", "list", "--json")).stdout)
    assert {c["serial"] for c in every} == {serial, other}
    assert {c["device_serial"] for c in every} == {"C02E2E00001", "C02E2E00002"}

    shown = await asyncio.to_thread(cli, "cert", "show", serial)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    for expected in (
        f"serial:       {serial}",
        "status:       valid",
        "subject:      OU=Engineering,O=acmegate tests,CN=C02E2E00001",
        "  permanentIdentifier: C02E2E00001",
        "  DNS: c02e2e00001.corp.example",
        "identifier:   permanent-identifier C02E2E00001",
        "  attested device (apple, apple):",
        "    serial number: C02E2E00001",
        "    UDID: 00006030-000651690A84001C",
        "  signal source: inventory",
        "  lookup policy: inventory-issuance",
        "  policy workflow: managed-devices",
        "  device role: attested-apple",
        "  enrollment policy: managed-apple-devices",
        "    department: Engineering",
        "  groups: Cert-Eligible",
    ):
        assert expected in text, (expected, text)
    as_json = json.loads((await asyncio.to_thread(cli, "cert", "show", serial, "--json")).stdout)
    assert as_json["record"]["enrollment_policy"] == "managed-apple-devices"
    assert as_json["record"]["source_attributes"]["username"] == "llama"
    pem = (await asyncio.to_thread(cli, "cert", "show", serial, "--pem")).stdout
    assert format(x509.load_pem_x509_certificate(pem.encode()).serial_number, "x") == serial

    revoked = await asyncio.to_thread(cli, "cert", "revoke", serial, "--reason", "superseded")
    assert revoked.returncode == 0 and f"revoked {serial} (superseded)" in revoked.stdout
    again = await asyncio.to_thread(cli, "cert", "revoke", serial, "--reason", "keyCompromise")
    assert again.returncode == 0 and "already revoked" in again.stdout
    assert "(superseded); nothing changed" in again.stdout
    shown = (await asyncio.to_thread(cli, "cert", "show", serial)).stdout
    assert "status:       revoked on " in shown and "(superseded)" in shown
    only_revoked = json.loads(
        (await asyncio.to_thread(cli, "cert", "list", "--status", "revoked", "--json")).stdout
    )
    assert [c["serial"] for c in only_revoked] == [serial]

    unknown = await asyncio.to_thread(
        cli, "cert", "revoke", "0123abcd", "--reason", "keyCompromise"
    )
    assert unknown.returncode == 2
    assert (
        "no certificate with serial 0123abcd" in unknown.stderr
        and "Traceback" not in unknown.stderr
    )
    bad_reason = await asyncio.to_thread(
        cli, "cert", "revoke", serial, "--reason", "certificateHold"
    )
    assert bad_reason.returncode == 2 and "unsupported revocation reason" in bad_reason.stderr
    missing = await asyncio.to_thread(cli, "cert", "show", "ffff")
    assert missing.returncode == 2 and "no certificate with serial ffff" in missing.stderr

    for _ in range(100):
        crl = await asyncio.to_thread(cli, "crl", "show", "devices")
        assert crl.returncode == 0, crl.stderr
        if serial in crl.stdout:
            break
        await asyncio.sleep(0.1)
    assert "CRL of devices: number " in crl.stdout and "1 revoked certificates" in crl.stdout
    assert f"URL:        {gateway.files.pki_url}/crl/devices.crl" in crl.stdout
    [entry] = [line for line in crl.stdout.splitlines() if serial in line]
    assert entry.split()[-1] == "superseded"  # each entry with its reason


def test_ca_init_creates_the_issuing_key_inside_a_token(tmp_path: Path) -> None:
    hsm = softhsm()
    done = acmegate(
        "ca", "init", "--out", str(tmp_path), "--name", "devices",
        "--common-name", "Token Devices CA", "--key-type", "ec-p384",
        "--pkcs11-module", hsm.module, "--token-label", hsm.token_label,
        "--key-label", f"cli-{tmp_path.name}",
        env={"ACMEGATE_CA_PASSPHRASE": "root passphrase", "ACMEGATE_PKCS11_PIN": hsm.pin},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert hsm.pin not in done.stdout + done.stderr
    assert not (tmp_path / "devices.key").exists()
    entry = yaml.safe_load(done.stdout.split("add this to your configuration:", 1)[1])
    key = entry["certificate_authorities"][0]["key"]
    assert key == {
        "type": "pkcs11",
        "module": hsm.module,
        "token_label": hsm.token_label,
        "key_label": f"cli-{tmp_path.name}",
        "pin": {"env": "ACMEGATE_PKCS11_PIN"},
    }
    (tmp_path / "acmegate.yaml").write_text(yaml.safe_dump(entry))
    listed = acmegate(
        "ca", "list", "--config", str(tmp_path / "acmegate.yaml"),
        env={"ACMEGATE_PKCS11_PIN": hsm.pin},
    )  # fmt: skip
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "key:       EC P-384" in listed.stdout
    assert (
        f"storage:   PKCS#11 token '{hsm.token_label}', key 'cli-{tmp_path.name}'" in listed.stdout
    )
    assert "key check: the key matches the certificate" in listed.stdout

    without_pin = acmegate(
        "ca", "list", "--config", str(tmp_path / "acmegate.yaml"), env={"ACMEGATE_PKCS11_PIN": ""}
    )
    assert without_pin.returncode == 1
    assert "key check: not done" in without_pin.stdout
    assert "no PIN for token" in without_pin.stdout
