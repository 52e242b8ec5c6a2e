"""EAP-TLS end to end with a real FreeRADIUS configured from docs/radius.md, and eapol_test.

Devices enroll with ``acmegate simulate-device --key-out/--cert-out`` (the fake Jamf Pro knows
them), then authenticate as a supplicant would:

- through ``rlm_rest`` and OCSP: a managed device is accepted; a device Jamf no longer manages
  is rejected with acmegate's reason in the Access-Reject; a certificate of a foreign CA is
  rejected by the TLS handshake; once revoked, the accepted device is rejected by OCSP;
- through CRLs kept by ``acmegate crl sync``: accepted, then rejected by the CRL once revoked
  (after FreeRADIUS reads the synced folder again);
- through ``verify`` (the certificate handed to acmegate by curl): accepted, and the unmanaged
  device rejected with acmegate's answer in the log.

No documented setup prints the endpoint's bearer token. ``ACMEGATE_FREERADIUS_LOG=DIR`` keeps
each FreeRADIUS run's ``freeradius -X`` output there.
"""

from __future__ import annotations

import asyncio
import datetime
import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from acmegate.cli.main import main
from acmegate.testkit.apple_ca import AttestationCA
from acmegate.testkit.fakejamf import FakeJamf
from tests.support import freeradius as fr
from tests.support.fake_jamf import MAC2_SERIAL, MAC_SERIAL, PHONE_SERIAL, PHONE_UDID, fake_jamf
from tests.support.gateway import Gateway, free_port, running_gateway
from tests.support.radius import RADIUS_TOKEN, radius_base_url, radius_config

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
__all__ = ["fake_jamf"]  # the fixture, imported for this module

_absent = fr.missing()
if _absent and not os.environ.get("ACMEGATE_REQUIRE_FREERADIUS"):
    pytestmark.append(pytest.mark.skip(reason=f"not installed: {', '.join(_absent)}"))


def cli(*args: str) -> int:
    return main(list(args))


async def device(gateway: Gateway, folder: Path, serial: str, *extra: str) -> Path:
    """Enroll ``serial`` as docs/radius.md §2.8 says; its eapol_test configuration."""
    directory = folder / serial
    key, cert = directory / "device.key", directory / "device.pem"
    code = await asyncio.to_thread(
        cli,
        "simulate-device", "--directory", gateway.directory_url, "--serial", serial,
        "--attestation-ca", str(gateway.files.config_path.parent / "attestation-ca"),
        "--key-out", str(key), "--cert-out", str(cert), *extra,
    )  # fmt: skip
    assert code == 0, f"{serial} did not enroll"
    return directory


def supplicant(raddb: fr.Raddb, directory: Path, serial: str) -> Path:
    """The documented eapol_test.conf, for the device whose files are in ``directory``."""
    text = raddb.snippet("eapol_test.conf")
    text = text.replace('"host/C02DEMO0001"', f'"host/{serial}"')
    text = text.replace('"device.pem"', f'"{directory / "device.pem"}"')
    text = text.replace('"device.key"', f'"{directory / "device.key"}"')
    path = directory / "eapol_test.conf"
    path.write_text(text)
    return path


def foreign_device(folder: Path) -> Path:
    """A device certificate for the right serial from a CA the gateway never heard of."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP384R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Elsewhere Devices CA")])
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, MAC_SERIAL)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory = folder / "foreign"
    directory.mkdir(parents=True)
    (directory / "device.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (directory / "device.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return directory


def serial_of(directory: Path) -> str:
    certificate = x509.load_pem_x509_certificate((directory / "device.pem").read_bytes())
    return format(certificate.serial_number, "x")


async def revoke(gateway: Gateway, directory: Path, reason: str) -> None:
    code = await asyncio.to_thread(
        cli, "cert", "revoke", serial_of(directory), "--reason", reason,
        "--config", str(gateway.files.config_path),
    )  # fmt: skip
    assert code == 0


async def crl_listing(gateway: Gateway, directory: Path) -> None:
    """Wait until the signer's newest CRL lists the device's certificate."""
    serial = serial_of(directory)
    for _ in range(100):
        der = await gateway.pool.fetchval(
            "SELECT der FROM pki.crls WHERE ca_name = 'devices' ORDER BY number DESC LIMIT 1"
        )
        if der is not None and x509.load_der_x509_crl(der).get_revoked_certificate_by_serial_number(
            int(serial, 16)
        ):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"no CRL lists {serial}")


def lines(exchange: fr.Exchange, *needles: str) -> list[str]:
    """The server's lines of one exchange that contain any of ``needles`` (for the report)."""
    return [line for line in exchange.server.splitlines() if any(n in line for n in needles)]


async def test_eap_tls_with_freeradius_configured_from_the_docs(
    tmp_path: Path,
    attestation_ca: AttestationCA,
    database_url: str,
    fake_jamf: FakeJamf,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ACMEGATE_DATABASE_URL", database_url)
    files = radius_config(tmp_path / "gateway", attestation_ca, fake_jamf, revoke_on_failure=False)
    async with running_gateway(files, database_url) as gateway:
        mac = await device(gateway, tmp_path, MAC_SERIAL)
        mac2 = await device(gateway, tmp_path, MAC2_SERIAL)
        phone = await device(gateway, tmp_path, PHONE_SERIAL, "--os", "ios", "--udid", PHONE_UDID)
        foreign = foreign_device(tmp_path)
        fake_jamf.set_managed(PHONE_SERIAL, False)

        port = free_port()
        raddb = fr.Raddb(
            tmp_path / "raddb",
            {
                "/etc/freeradius/3.0": str(tmp_path / "raddb"),
                "http://127.0.0.1:8081": radius_base_url(gateway),
                "http://pki.example.com": gateway.files.pki_url,
                "/etc/acmegate/ca": str(files.ca_pem.parent),
                "/var/lib/freeradius": str(tmp_path / "var"),
                "<the value of radius.token>": RADIUS_TOKEN,
            },
        )
        await asyncio.to_thread(raddb.build, port)
        conf = {
            name: supplicant(raddb, directory, serial)
            for name, directory, serial in (
                ("mac", mac, MAC_SERIAL),
                ("mac2", mac2, MAC2_SERIAL),
                ("phone", phone, PHONE_SERIAL),
                ("foreign", foreign, MAC_SERIAL),
            )
        }
        outputs: list[str] = []

        # §2.5: the certificate handed to acmegate by `verify`.
        raddb.eap_module(revocation=None, verify=True)
        await asyncio.to_thread(raddb.run_shell, raddb.snippet("shell", "verify"))
        async with fr.freeradius(raddb, port, "verify") as server:
            accepted = await fr.eap_tls(server, conf["mac"])
            assert accepted.accepted, accepted.server[-3000:]
            unmanaged = await fr.eap_tls(server, conf["phone"])
            assert not unmanaged.accepted
            assert f"acmegate: device {PHONE_SERIAL} is not managed" in unmanaged.server
            outputs.append(server.output)

        # §2.3 OCSP and §2.4 rlm_rest.
        raddb.eap_module(revocation="ocsp", verify=False)
        async with fr.freeradius(raddb, port, "ocsp-rest") as server:
            accepted = await fr.eap_tls(server, conf["mac"])
            assert accepted.accepted, accepted.server[-3000:]
            assert "ocsp: Cert status: good" in accepted.server
            assert "[rest] = ok" in accepted.server

            unmanaged = await fr.eap_tls(server, conf["phone"])
            assert not unmanaged.accepted
            reason = f"acmegate: device {PHONE_SERIAL} is not managed (signal source 'jamf')"
            assert "[rest] = reject" in unmanaged.server
            # §2.7: the reason is in the Access-Reject the supplicant receives.
            received = unmanaged.supplicant[unmanaged.supplicant.index("Access-Reject") :]
            assert "Attribute 18 (Reply-Message)" in received, received
            assert reason in received, received

            stranger = await fr.eap_tls(server, conf["foreign"])
            assert not stranger.accepted
            assert "unable to get local issuer certificate" in stranger.server
            assert "rest" not in "".join(lines(stranger, "[rest]"))

            await revoke(gateway, mac, "keyCompromise")
            revoked = await fr.eap_tls(server, conf["mac"])
            assert not revoked.accepted
            assert "ocsp: Cert status: revoked" in revoked.server
            assert "[rest]" not in revoked.server  # the handshake already failed
            outputs.append(server.output)

        # §2.3 CRLs kept by `acmegate crl sync`.
        raddb.eap_module(revocation="crl", verify=False)
        sync = raddb.snippet("shell", "crl-sync")
        await asyncio.to_thread(raddb.run_shell, sync)
        async with fr.freeradius(raddb, port, "crl-before") as server:
            assert "ca_path_reload_interval = 300" in server.output
            accepted = await fr.eap_tls(server, conf["mac2"])
            assert accepted.accepted, accepted.server[-3000:]
            outputs.append(server.output)
        await revoke(gateway, mac2, "superseded")
        await crl_listing(gateway, mac2)
        await asyncio.to_thread(raddb.run_shell, sync)
        # FreeRADIUS reads ca_path again after ca_path_reload_interval, or when it starts.
        async with fr.freeradius(raddb, port, "crl-after") as server:
            revoked = await fr.eap_tls(server, conf["mac2"])
            assert not revoked.accepted
            assert "certificate revoked" in revoked.server
            assert "[rest]" not in revoked.server
            outputs.append(server.output)

    # §2.4, §2.5: the token is in files FreeRADIUS never prints.
    assert all(RADIUS_TOKEN not in output for output in outputs)
