"""The RADIUS-time check FreeRADIUS calls during EAP-TLS, against the whole gateway.

A device enrolls through the fake Jamf Pro, then presents its certificate as FreeRADIUS would
(docs/radius.md): accepted while Jamf vouches for the device, rejected (and revoked, with Revoke
On Failure) once it left; a certificate of a foreign CA and a caller without the bearer token
are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from acmegate.common.x509names import PERMANENT_IDENTIFIER, encode_permanent_identifier
from acmegate.testkit.apple_ca import AttestationCA, LeafClaims
from acmegate.testkit.device import SimulatedDevice
from acmegate.testkit.fakejamf import FakeJamf
from tests.support.fake_jamf import (
    MAC2_SERIAL,
    MAC_SERIAL,
    MAC_UDID,
    UNMANAGED_SERIAL,
    fake_jamf,
)
from tests.support.gateway import PASSPHRASE, Gateway, running_gateway
from tests.support.radius import RADIUS_TOKEN, radius_base_url, radius_config

pytestmark = pytest.mark.e2e
__all__ = ["fake_jamf"]  # the fixture, imported for this module

OpenGateway = Callable[..., contextlib.AbstractAsyncContextManager[Gateway]]


@pytest.fixture
def open_gateway(
    tmp_path: Path, attestation_ca: AttestationCA, database_url: str, fake_jamf: FakeJamf
) -> OpenGateway:
    def opened(
        identity: str = "certificate_permanent_identifier",
        revoke_on_failure: bool = True,
        any_csr_dns_name: bool = False,
    ) -> contextlib.AbstractAsyncContextManager[Gateway]:
        files = radius_config(
            tmp_path / "gateway",
            attestation_ca,
            fake_jamf,
            identity=identity,
            revoke_on_failure=revoke_on_failure,
            any_csr_dns_name=any_csr_dns_name,
        )
        return running_gateway(files, database_url)

    return opened


def radius_url(gateway: Gateway) -> str:
    return f"{radius_base_url(gateway)}/radius/authorize"


async def enrolled_leaf(
    gateway: Gateway, ca: AttestationCA, serial: str, *, dns: str | None = None
) -> str:
    """The chain of a certificate the device ``serial`` enrolled for; ``dns`` is a dNSName it
    puts in its CSR (the test template copies it into the certificate)."""
    udid = MAC_UDID if serial == MAC_SERIAL else None
    device = SimulatedDevice(
        gateway.directory_url,
        serial,
        LeafClaims.macos(serial, udid),
        ca,
        subject_alt_name={"dNSName": dns} if dns else None,
    )
    try:
        result = await device.enroll()
    finally:
        await device.close()
    assert result.ok, result.problems
    return result.certificate_chain_pem or ""


async def ask(
    gateway: Gateway,
    body: bytes,
    content_type: str = "application/x-pem-file",
    token: str | None = RADIUS_TOKEN,
) -> tuple[int, dict[str, Any] | None, aiohttp.typedefs.LooseHeaders]:
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession() as http,
        http.post(radius_url(gateway), data=body, headers=headers) as response,
    ):
        answer = await response.json() if response.content_type == "application/json" else None
        return response.status, answer, dict(response.headers)


def foreign_leaf(serial: str) -> bytes:
    """A certificate with the device's identity from a CA the gateway never heard of."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "E2E Devices CA")])
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, serial)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.OtherName(PERMANENT_IDENTIFIER, encode_permanent_identifier(serial))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return leaf.public_bytes(serialization.Encoding.PEM)


async def statuses(gateway: Gateway, serial: str) -> list[tuple[str, str | None]]:
    rows = await gateway.pool.fetch(
        "SELECT status, revocation_reason FROM pki.certificates WHERE device_serial = $1", serial
    )
    return [(row["status"], row["revocation_reason"]) for row in rows]


async def test_a_good_certificate_is_accepted_and_one_whose_device_left_is_rejected_and_revoked(
    open_gateway: OpenGateway, attestation_ca: AttestationCA, fake_jamf: FakeJamf
) -> None:
    async with open_gateway() as gateway:
        chain = await enrolled_leaf(gateway, attestation_ca, MAC_SERIAL)
        status, _, headers = await ask(gateway, chain.encode())
        assert status == 204, headers
        assert headers["X-Acmegate-Reason"] == f"device {MAC_SERIAL} is managed"
        # The PEM can also come inside JSON.
        status, _, _ = await ask(
            gateway, json.dumps({"certificate": chain}).encode(), "application/json"
        )
        assert status == 204

        fake_jamf.remove_device(MAC_SERIAL)
        status, body, _ = await ask(gateway, chain.encode())
        assert status == 401
        assert body == {
            "Reply-Message": (f"acmegate: device {MAC_SERIAL} is not known to signal source 'jamf'")
        }
        for _ in range(50):
            if await statuses(gateway, MAC_SERIAL) == [("revoked", "cessationOfOperation")]:
                break
            await asyncio.sleep(0.1)
        assert await statuses(gateway, MAC_SERIAL) == [("revoked", "cessationOfOperation")]


async def test_an_unmanaged_device_is_rejected(
    open_gateway: OpenGateway, attestation_ca: AttestationCA, fake_jamf: FakeJamf
) -> None:
    async with open_gateway(revoke_on_failure=False) as gateway:
        chain = await enrolled_leaf(gateway, attestation_ca, MAC2_SERIAL)
        fake_jamf.set_managed(MAC2_SERIAL, False)
        status, body, _ = await ask(gateway, chain.encode())
        assert status == 401 and body is not None
        assert body["Reply-Message"].endswith("is not managed (signal source 'jamf')")
        assert await statuses(gateway, MAC2_SERIAL) == [("valid", None)]  # no Revoke On Failure


async def test_a_foreign_certificate_and_callers_without_the_token_are_refused(
    open_gateway: OpenGateway, attestation_ca: AttestationCA
) -> None:
    async with open_gateway() as gateway:
        status, body, _ = await ask(gateway, foreign_leaf(MAC_SERIAL))
        assert status == 401 and body is not None
        assert "not issued by this gateway" in body["Reply-Message"] or (
            "does not verify" in body["Reply-Message"]
        )
        chain = await enrolled_leaf(gateway, attestation_ca, MAC_SERIAL)
        for token in (None, "wrong-token", RADIUS_TOKEN + "x"):
            status, body, headers = await ask(gateway, chain.encode(), token=token)
            assert status == 401, token
            assert headers["WWW-Authenticate"] == 'Bearer realm="acmegate-radius"'
        status, _, _ = await ask(gateway, b"", token=RADIUS_TOKEN)
        assert status == 400
        async with (
            aiohttp.ClientSession() as http,
            http.get(radius_url(gateway).replace("authorize", "health")) as response,
        ):
            assert response.status == 200


async def test_freeradius_attributes_are_enough_for_a_common_name_lookup(
    open_gateway: OpenGateway, attestation_ca: AttestationCA, fake_jamf: FakeJamf
) -> None:
    async with open_gateway(identity="certificate_common_name") as gateway:
        chain = await enrolled_leaf(gateway, attestation_ca, MAC_SERIAL)
        leaf = x509.load_pem_x509_certificate(chain.encode())
        issuer = "".join(f"/{a.rfc4514_attribute_name}={a.value!s}" for a in leaf.issuer)
        # What rlm_rest sends with body = 'json' in the check-eap-tls virtual server.
        attributes = {
            "User-Name": {"type": "string", "value": [f"host/{MAC_SERIAL}"]},
            "TLS-Client-Cert-Serial": {
                "type": "string",
                "value": [format(leaf.serial_number, "x")],
            },
            "TLS-Client-Cert-Issuer": {"type": "string", "value": [issuer]},
            "TLS-Client-Cert-Common-Name": {"type": "string", "value": [MAC_SERIAL]},
        }
        body = json.dumps(attributes).encode()
        status, _, _ = await ask(gateway, body, "application/json")
        assert status == 204
        fake_jamf.set_managed(MAC_SERIAL, False)
        status, answer, _ = await ask(gateway, body, "application/json")
        assert status == 401 and answer is not None
        assert answer["Reply-Message"].endswith("is not managed (signal source 'jamf')")
        for _ in range(50):
            if await statuses(gateway, MAC_SERIAL) == [("revoked", "privilegeWithdrawn")]:
                break
            await asyncio.sleep(0.1)
        assert await statuses(gateway, MAC_SERIAL) == [("revoked", "privilegeWithdrawn")]
        attributes["TLS-Client-Cert-Issuer"]["value"] = ["/CN=Somebody Else"]
        status, answer, _ = await ask(gateway, json.dumps(attributes).encode(), "application/json")
        assert status == 401 and answer is not None
        assert "not issued by this gateway" in answer["Reply-Message"]


def attributes_of(leaf: x509.Certificate, **override: str) -> bytes:
    """What rlm_rest sends (body = 'json') about ``leaf``, with some values replaced."""
    issuer = "".join(f"/{a.rfc4514_attribute_name}={a.value!s}" for a in leaf.issuer)
    values = {
        "TLS-Client-Cert-Serial": format(leaf.serial_number, "x"),
        "TLS-Client-Cert-Issuer": issuer,
        "TLS-Client-Cert-Common-Name": str(
            leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        ),
        **{name.replace("_", "-"): value for name, value in override.items()},
    }
    return json.dumps({k: {"type": "string", "value": [v]} for k, v in values.items()}).encode()


def certificate_of(chain: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(chain.encode())


async def test_a_dns_name_the_device_put_in_its_csr_never_makes_it_another_device(
    open_gateway: OpenGateway, attestation_ca: AttestationCA, fake_jamf: FakeJamf
) -> None:
    # issue #8 item 2: the identity is the device the gateway vouched for at issuance. The
    # shipped template's csr_rules would refuse the impostor's name at issuance already; this
    # gateway admits any dNSName, so the RADIUS check alone must hold.
    async with open_gateway(identity="certificate_san_dns", any_csr_dns_name=True) as gateway:
        # MAC2 is managed when it enrolls, and names the other Mac in its CSR.
        impostor = await enrolled_leaf(
            gateway, attestation_ca, MAC2_SERIAL, dns=f"{MAC_SERIAL.lower()}.corp.example"
        )
        honest = await enrolled_leaf(
            gateway, attestation_ca, MAC_SERIAL, dns=f"{MAC_SERIAL.lower()}.corp.example"
        )
        status, body, _ = await ask(gateway, impostor.encode())
        assert status == 401 and body is not None
        assert body["Reply-Message"] == (
            f"acmegate: the certificate's SAN dNSName {MAC_SERIAL.lower()}.corp.example does not "
            f"name the device it was issued to ({MAC2_SERIAL})"
        )
        status, _, headers = await ask(gateway, honest.encode())
        assert status == 204, headers
        # Once it is no longer managed, its certificate is refused, whatever name it carries.
        fake_jamf.set_managed(MAC2_SERIAL, False)
        status, body, _ = await ask(gateway, impostor.encode())
        assert status == 401 and body is not None
        assert body["Reply-Message"] == (
            f"acmegate: device {MAC2_SERIAL} is not managed (signal source 'jamf')"
        )
        for _ in range(50):
            if await statuses(gateway, MAC2_SERIAL) == [("revoked", "privilegeWithdrawn")]:
                break
            await asyncio.sleep(0.1)
        assert await statuses(gateway, MAC2_SERIAL) == [("revoked", "privilegeWithdrawn")]
        assert await statuses(gateway, MAC_SERIAL) == [("valid", None)]


async def test_revoke_on_failure_never_revokes_a_certificate_of_another_device(
    open_gateway: OpenGateway, attestation_ca: AttestationCA
) -> None:
    # issue #8 item 4: FreeRADIUS's attributes pair the managed Mac's certificate serial with
    # the common name of a device Jamf no longer manages.
    async with open_gateway(identity="certificate_common_name") as gateway:
        leaf = certificate_of(await enrolled_leaf(gateway, attestation_ca, MAC_SERIAL))
        body = attributes_of(leaf, TLS_Client_Cert_Common_Name=UNMANAGED_SERIAL)
        status, answer, _ = await ask(gateway, body, "application/json")
        assert status == 401 and answer is not None
        assert answer["Reply-Message"] == (
            f"acmegate: the certificate's subject commonName {UNMANAGED_SERIAL} does not name "
            f"the device it was issued to ({MAC_SERIAL})"
        )
        await asyncio.sleep(0.5)  # a revocation, had one been sent, lands within this
        assert await statuses(gateway, MAC_SERIAL) == [("valid", None)]
        # Its own attributes are accepted; the PermanentIdentifier identity needs none of them.
        status, _, headers = await ask(gateway, attributes_of(leaf), "application/json")
        assert status == 204, headers


async def test_a_revoked_or_unknown_certificate_of_a_managed_device_is_rejected(
    open_gateway: OpenGateway, attestation_ca: AttestationCA, tmp_path: Path
) -> None:
    # issue #17 item 3: the endpoint knows every certificate it issued.
    async with open_gateway(revoke_on_failure=False) as gateway:
        chain = await enrolled_leaf(gateway, attestation_ca, MAC_SERIAL)
        leaf = certificate_of(chain)
        serial = format(leaf.serial_number, "x")
        assert (await ask(gateway, chain.encode()))[0] == 204
        await gateway.pool.execute(
            "UPDATE pki.certificates SET status = 'revoked', revoked_at = now(), "
            "revocation_reason = 'keyCompromise' WHERE serial = $1",
            serial,
        )
        for body, content_type in (
            (chain.encode(), "application/x-pem-file"),
            (attributes_of(leaf), "application/json"),
        ):
            status, answer, _ = await ask(gateway, body, content_type)
            assert status == 401 and answer is not None
            assert answer["Reply-Message"].startswith(
                f"acmegate: certificate {serial} was revoked on "
            )
            assert answer["Reply-Message"].endswith(" (keyCompromise)")

        # Signed with the CA's own key, but never issued (the inventory has no record of it).
        key = serialization.load_pem_private_key(
            (gateway.files.config_path.parent / "ca" / "devices.key").read_bytes(),
            PASSPHRASE.encode(),
        )
        ca = x509.load_pem_x509_certificate(gateway.files.ca_pem.read_bytes())
        forged = (
            x509.CertificateBuilder()
            .subject_name(leaf.subject)
            .issuer_name(ca.subject)
            .public_key(leaf.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(leaf.not_valid_before_utc)
            .not_valid_after(leaf.not_valid_after_utc)
            .add_extension(
                leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value,
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(key, hashes.SHA256())  # type: ignore[arg-type]
        )
        forged_serial = format(forged.serial_number, "x")
        status, answer, _ = await ask(gateway, forged.public_bytes(serialization.Encoding.PEM))
        assert status == 401 and answer is not None
        assert answer["Reply-Message"] == (
            f"acmegate: certificate {forged_serial} was not issued by this gateway "
            "(no record of it in CA 'devices')"
        )
        status, answer, _ = await ask(
            gateway, attributes_of(leaf, TLS_Client_Cert_Serial=forged_serial), "application/json"
        )
        assert status == 401 and answer is not None
        assert "was not issued by this gateway" in answer["Reply-Message"]
