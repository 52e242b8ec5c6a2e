"""``acmegate ca`` as an administrator types it: clear errors instead of tracebacks, a
passphrase from the environment, a file or a prompt, ``install --force`` for a renewal, DER
files, and help text with defaults for every option."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import io
import os
import pty
import select
import subprocess
import sys
import termios
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from acmegate.cli.main import build_parser, main
from tests.unit.signer.test_ca_chains import ca, usage

PASSPHRASE = "correct horse battery staple"
NOW = datetime.now(UTC).replace(microsecond=0)


@dataclass
class Ran:
    code: int
    out: str
    err: str


def run(*args: str) -> Ran:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return Ran(code, out.getvalue(), err.getvalue())


@pytest.fixture
def passphrase_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACMEGATE_CA_PASSPHRASE", PASSPHRASE)


@pytest.mark.usefixtures("passphrase_env")
@pytest.mark.parametrize("command", ["init", "csr"])
@pytest.mark.parametrize("common_name", ["", "x" * 65])
def test_a_common_name_that_cannot_be_a_cn_is_a_clear_error(
    tmp_path: Path, command: str, common_name: str
) -> None:
    ran = run("ca", command, "--out", str(tmp_path / "ca"), "--name", "devices",
              "--common-name", common_name)  # fmt: skip
    assert ran.code == 2
    assert ran.err == (
        f"acmegate: the common name: a CN has 1 to 64 characters (RFC 5280 ub-common-name); "
        f"{common_name!r} has {len(common_name)}\n"
    )
    assert not (tmp_path / "ca").exists()


def test_an_unset_passphrase_variable_is_named_with_the_other_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ACMEGATE_CA_PASSPHRASE", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO())  # not a terminal: nobody to ask
    ran = run("ca", "init", "--out", str(tmp_path / "ca"), "--name", "devices",
              "--common-name", "Devices CA", "--passphrase-env", "MY_CA_PASSPHRASE")  # fmt: skip
    assert ran.code == 2
    assert "environment variable MY_CA_PASSPHRASE is not set" in ran.err
    assert "--passphrase-file" in ran.err and "terminal" in ran.err


def test_the_passphrase_can_come_from_a_file_and_the_entry_names_that_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ACMEGATE_CA_PASSPHRASE", raising=False)
    secret = tmp_path / "ca-passphrase"
    secret.write_text(PASSPHRASE + "\n")
    ran = run("ca", "init", "--out", str(tmp_path / "ca"), "--name", "devices",
              "--common-name", "Devices CA", "--passphrase-file", str(secret))  # fmt: skip
    assert ran.code == 0, ran.err
    entry = yaml.safe_load(ran.out[ran.out.index("certificate_authorities:") :])
    key = entry["certificate_authorities"][0]["key"]
    assert key["passphrase"] == {"file": str(secret.resolve())}
    serialization.load_pem_private_key(
        (tmp_path / "ca" / "devices.key").read_bytes(), PASSPHRASE.encode()
    )


def _in_a_terminal(args: list[str], answers: list[str]) -> tuple[int, str]:
    """Run ``acmegate ARGS`` with a pseudo-terminal as its controlling terminal, typing each
    answer after a prompt; its exit code and what the terminal showed."""
    primary, secondary = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "ACMEGATE_CA_PASSPHRASE"}

    def controlling_terminal() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(
        [sys.executable, "-m", "acmegate.cli.main", *args],
        stdin=secondary, stdout=secondary, stderr=secondary, env=env,
        start_new_session=True, preexec_fn=controlling_terminal,
    )  # fmt: skip
    os.close(secondary)
    shown = b""
    pending = list(answers)
    answered = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([primary], [], [], 1)
        if not ready:
            if process.poll() is not None:
                break
            continue
        try:
            chunk = os.read(primary, 4096)
        except OSError:
            break  # the process closed the terminal
        if not chunk:
            break
        shown += chunk
        # A prompt ends in ": " and waits; answer each once (echo is off while it reads).
        if pending and shown.endswith(b": ") and shown.count(b": ") > answered:
            os.write(primary, pending.pop(0).encode() + b"\n")
            answered += 1
    os.close(primary)
    return process.wait(30), shown.decode(errors="replace")


def test_the_passphrase_is_asked_for_twice_in_a_terminal(tmp_path: Path) -> None:
    out = tmp_path / "ca"
    code, shown = _in_a_terminal(
        ["ca", "init", "--out", str(out), "--name", "devices", "--common-name", "Devices CA"],
        [PASSPHRASE, PASSPHRASE],
    )
    assert code == 0, shown
    assert "Passphrase for the new CA keys" in shown and "Repeat it: " in shown
    assert PASSPHRASE not in shown  # not echoed
    serialization.load_pem_private_key((out / "devices.key").read_bytes(), PASSPHRASE.encode())
    code, shown = _in_a_terminal(
        ["ca", "init", "--out", str(tmp_path / "other"), "--name", "devices",
         "--common-name", "Devices CA"],
        [PASSPHRASE, PASSPHRASE + "!"],
    )  # fmt: skip
    assert code == 2 and "the passphrases differ" in shown
    assert not (tmp_path / "other").exists()


def _sign(csr_path: Path, root_key: ec.EllipticCurvePrivateKey, root: x509.Certificate,
          days: int) -> x509.Certificate:  # fmt: skip
    csr = x509.load_pem_x509_csr(csr_path.read_bytes())
    return (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(root.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(hours=1))
        .not_valid_after(NOW + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(), critical=True)
        .sign(root_key, hashes.SHA256())
    )


def _root() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    root = ca("Enterprise Root")
    return root.key, root.certificate


@pytest.mark.usefixtures("passphrase_env")
def test_install_force_replaces_a_renewed_certificate_and_der_files_are_read(
    tmp_path: Path,
) -> None:
    out = tmp_path / "ca"
    assert run("ca", "csr", "--out", str(out), "--name", "devices",
               "--common-name", "Devices CA").code == 0  # fmt: skip
    root_key, root = _root()
    der = serialization.Encoding.DER
    (tmp_path / "root.cer").write_bytes(root.public_bytes(der))
    (tmp_path / "signed.cer").write_bytes(
        _sign(out / "devices.csr", root_key, root, 365).public_bytes(der)
    )
    signed, root_cer = str(tmp_path / "signed.cer"), str(tmp_path / "root.cer")
    install = ["ca", "install", "--out", str(out), "--name", "devices",
               "--certificate", signed, "--chain", root_cer]  # fmt: skip
    first = run(*install)
    assert first.code == 0, first.err
    renewed = _sign(out / "devices.csr", root_key, root, 730)
    (tmp_path / "signed.cer").write_bytes(renewed.public_bytes(der))
    again = run(*install)
    assert again.code == 2 and "refusing to overwrite" in again.err and "--force" in again.err
    forced = run(*install, "--force")
    assert forced.code == 0, forced.err
    assert f"replaced {out / 'devices.pem'}" in forced.out
    installed = x509.load_pem_x509_certificate((out / "devices.pem").read_bytes())
    assert installed == renewed

    (tmp_path / "junk.cer").write_bytes(b"\x30\x03\x02\x01\x05")
    junk = run("ca", "install", "--out", str(out), "--name", "devices", "--force",
               "--certificate", str(tmp_path / "junk.cer"), "--chain", root_cer)  # fmt: skip
    assert junk.code == 2
    assert "is neither a PEM nor a DER certificate" in junk.err and "Traceback" not in junk.err


@pytest.mark.usefixtures("passphrase_env")
def test_import_reads_der_certificates_and_a_der_key(tmp_path: Path) -> None:
    root_key, root = _root()
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Imported CA")]))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "req.pem").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    issuing = _sign(tmp_path / "req.pem", root_key, root, 365)
    der = serialization.Encoding.DER
    (tmp_path / "ca.cer").write_bytes(issuing.public_bytes(der))
    (tmp_path / "root.cer").write_bytes(root.public_bytes(der))
    (tmp_path / "ca.key.der").write_bytes(
        key.private_bytes(der, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    ran = run("ca", "import", "--out", str(tmp_path / "out"), "--name", "imported",
              "--certificate", str(tmp_path / "ca.cer"), "--key", str(tmp_path / "ca.key.der"),
              "--chain", str(tmp_path / "root.cer"))  # fmt: skip
    assert ran.code == 0, ran.err
    assert x509.load_pem_x509_certificate((tmp_path / "out" / "imported.pem").read_bytes()) == (
        issuing
    )


def _subcommands(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> argparse.ArgumentParser:
    for name in path:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


@pytest.mark.parametrize("command", ["init", "import", "csr", "install", "list"])
def test_every_ca_option_has_help_and_shows_its_default(command: str) -> None:
    parser = _subcommands(build_parser(), ("ca", command))
    text = parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"ca {command} {action.option_strings}: no help text"
        if action.default not in (None, False, [], argparse.SUPPRESS) and action.option_strings:
            assert f"(default: {action.default})" in " ".join(text.split()), (
                f"ca {command} {action.option_strings[0]}: default not shown"
            )
