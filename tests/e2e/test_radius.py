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
from collections.abc import AsyncIterator, Callable
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
from tests.support.fake_jamf import MAC2_SERIAL, MAC_SERIAL, MAC_UDID, fake_jamf, jamf_overrides
from tests.support.gateway import Gateway, free_port, gateway_config, running_gateway

pytestmark = pytest.mark.e2e
__all__ = ["fake_jamf"]  # the fixture, imported for this module

RADIUS_TOKEN = "radius-bearer-token-of-the-tests"

OpenGateway = Callable[..., contextlib.AbstractAsyncContextManager[Gateway]]


@pytest.fixture
def open_gateway(
    tmp_path: Path, attestation_ca: AttestationCA, database_url: str, fake_jamf: FakeJamf
) -> OpenGateway:
    @contextlib.asynccontextmanager
    async def opened(
        identity: str = "certificate_permanent_identifier", revoke_on_failure: bool = True
    ) -> AsyncIterator[Gateway]:
        folder = tmp_path / "gateway"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "radius-token").write_text(RADIUS_TOKEN)
        overrides = jamf_overrides(fake_jamf.url, folder)
        overrides["lookup_policies"].append(
            {
                "name": "radius-check",
                "purpose": "radius_authentication",
                "signal_source": "jamf",
                "identity": identity,
                "revoke_on_failure": revoke_on_failure,
            }
        )
        overrides["radius"] = {
            "enabled": True,
            "host": "127.0.0.1",
            "port": free_port(),
            "lookup_policy": "radius-check",
            "token": {"file": "radius-token"},
        }
        files = gateway_config(folder, attestation_ca, overrides=overrides)
        async with running_gateway(files, database_url) as gateway:
            yield gateway

    return opened


def radius_url(gateway: Gateway) -> str:
    return f"http://127.0.0.1:{gateway.config.radius.port}/radius/authorize"


async def enrolled_leaf(gateway: Gateway, ca: AttestationCA, serial: str) -> str:
    udid = MAC_UDID if serial == MAC_SERIAL else None
    device = SimulatedDevice(gateway.directory_url, serial, LeafClaims.macos(serial, udid), ca)
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
