"""ARI (RFC 9773) end to end with certificates the gateway issued: the suggested window of a
device certificate (read through certbot's own ARI code, which computes the certID
independently), a revoked certificate's window, bad certIDs, and newOrder's ``replaces``."""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
from typing import Any

import pytest
import requests
from acme import challenges, client, errors, messages
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from josepy.jwa import ES256
from josepy.jwk import JWKEC

from acmegate.testkit.apple_ca import AttestationCA
from tests.support.certbot_client import enroll_with_certbot_acme
from tests.support.challtestsrv import ChallTestSrv
from tests.support.gateway import Gateway
from tests.support.server_certs import account, challenge_of, deadline, server_csr

pytestmark = pytest.mark.e2e

URN = "urn:ietf:params:acme:error:"


def cert_id(pem: str) -> str:
    """certID (RFC 9773 §4.1), written out here rather than taken from the gateway."""
    leaf = x509.load_pem_x509_certificate(pem.encode())
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier is not None
    serial = leaf.serial_number
    octets = serial.to_bytes((serial.bit_length() + 8) // 8, "big", signed=True)

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return f"{b64(aki.key_identifier)}.{b64(octets)}"


def existing_account(directory_url: str, key: ec.EllipticCurvePrivateKey) -> client.ClientV2:
    """A client of the account ``key`` already has (newAccount answers 200 with its URL)."""
    net = client.ClientNetwork(JWKEC(key=key), alg=ES256, user_agent="acmegate-tests/ari")
    acme = client.ClientV2(client.ClientV2.get_directory(directory_url, net), net)
    try:
        acme.new_account(messages.NewRegistration.from_data(only_return_existing=True))
    except errors.ConflictError as existing:
        net.account = messages.RegistrationResource(
            body=messages.Registration(), uri=existing.location
        )
    return acme


def renewal_info(gateway: Gateway, certificate_id: str) -> requests.Response:
    directory = requests.get(gateway.directory_url, timeout=10).json()
    return requests.get(f"{directory['renewalInfo']}/{certificate_id}", timeout=10)


def window(response: requests.Response) -> tuple[datetime.datetime, datetime.datetime]:
    body = response.json()["suggestedWindow"]
    return (
        datetime.datetime.fromisoformat(body["start"]),
        datetime.datetime.fromisoformat(body["end"]),
    )


class _Body:
    """A newOrder payload the ``acme`` library has no message for (``replaces``)."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    def json_dumps(self, **_: Any) -> str:
        return json.dumps(self.fields)


def order_replacing(
    acme: client.ClientV2, names: list[str], replaces: str
) -> messages.OrderResource:
    """newOrder for ``names`` with ``replaces`` (RFC 9773 §5), as the library's new_order."""
    directory: Any = acme.directory
    identifiers = [{"type": "dns", "value": n} for n in names]
    response = acme.net.post(
        directory["newOrder"],
        _Body({"identifiers": identifiers, "replaces": replaces}),
        new_nonce_url=directory["newNonce"],
    )
    body = messages.Order.from_json(response.json())
    authorizations = [
        messages.AuthorizationResource(
            body=messages.Authorization.from_json(
                acme.net.post(url, None, new_nonce_url=directory["newNonce"]).json()
            ),
            uri=url,
        )
        for url in body.authorizations
    ]
    return messages.OrderResource(
        body=body,
        uri=response.headers.get("Location"),
        authorizations=authorizations,
        csr_pem=server_csr(names),
    )


async def issue(
    acme: client.ClientV2,
    responder: ChallTestSrv,
    names: list[str],
    replaces: str | None = None,
) -> str:
    if replaces is None:
        order = await asyncio.to_thread(acme.new_order, server_csr(names))
    else:
        order = await asyncio.to_thread(order_replacing, acme, names, replaces)
    for authz in order.authorizations:
        challb = challenge_of(authz, challenges.HTTP01)
        response, validation = challb.response_and_validation(acme.net.key)
        await responder.add_http01(challb.chall.encode("token"), validation)
        await asyncio.to_thread(acme.answer_challenge, challb, response)
    final = await asyncio.to_thread(acme.poll_and_finalize, order, deadline())
    return str(final.fullchain_pem)


async def test_a_device_certificate_should_be_renewed_in_the_last_third_of_its_life(
    server_gateway: Gateway, attestation_ca: AttestationCA
) -> None:
    account_key = ec.generate_private_key(ec.SECP256R1())
    chain = await asyncio.to_thread(
        enroll_with_certbot_acme,
        server_gateway.directory_url,
        "C02E2E00001",
        attestation_ca,
        account_key=account_key,
    )
    leaf = x509.load_pem_x509_certificate(chain.encode())
    not_before, not_after = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    lifetime = not_after - not_before

    response = await asyncio.to_thread(renewal_info, server_gateway, cert_id(chain))
    assert response.status_code == 200, response.text
    assert response.headers["Retry-After"] == str(6 * 3600)
    start, end = window(response)
    second = datetime.timedelta(seconds=1)
    assert abs(start - (not_after - lifetime / 3)) <= second
    assert abs(end - (not_after - lifetime / 9)) <= second

    # certbot's own ARI client (its certID code, its parser) lands inside the window.
    acme = await asyncio.to_thread(existing_account, server_gateway.directory_url, account_key)
    when, _ = await asyncio.to_thread(acme.renewal_time, chain.encode())
    assert when is not None
    assert start - second <= when.astimezone(datetime.UTC) <= end + second

    # Revoked: the window has begun, so clients renew at once.
    await asyncio.to_thread(acme.revoke, leaf, 1)
    revoked = await asyncio.to_thread(renewal_info, server_gateway, cert_id(chain))
    start, end = window(revoked)
    assert start <= datetime.datetime.now(datetime.UTC) <= end


@pytest.mark.parametrize(
    ("certificate_id", "status"),
    [
        ("AAAA.AQ", 404),  # well formed, no such certificate
        ("not-a-cert-id", 400),
        ("AAAA.gA", 400),  # a negative serial: 0x80 without its leading zero
        ("AAAA.AAE", 400),  # not the shortest encoding of 1
        ("AA!A.AQ", 400),
    ],
)
async def test_a_cert_id_that_names_nothing_is_a_problem(
    server_gateway: Gateway, certificate_id: str, status: int
) -> None:
    response = await asyncio.to_thread(renewal_info, server_gateway, certificate_id)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["type"] == URN + "malformed"


async def test_replaces_renews_a_certificate_once(
    server_gateway: Gateway, responder: ChallTestSrv
) -> None:
    acme = await asyncio.to_thread(account, server_gateway.directory_url)
    first = await issue(acme, responder, ["ari.example.test"])
    renewed = await issue(acme, responder, ["ari.example.test"], replaces=cert_id(first))
    assert cert_id(renewed) != cert_id(first)

    # §5: a certificate is replaced once. 409 as Boulder answers it, which the `acme` library
    # raises as ConflictError whatever the body: read the problem off the wire.
    seen: list[requests.Response] = []
    acme.net.session.hooks["response"].append(lambda r, *_, **__: seen.append(r))
    with pytest.raises(errors.ConflictError):
        await asyncio.to_thread(order_replacing, acme, ["ari.example.test"], cert_id(first))
    assert seen[-1].status_code == 409
    assert seen[-1].json()["type"] == URN + "alreadyReplaced"
    # Only its own account may replace it, and only with an order sharing an identifier.
    other = await asyncio.to_thread(account, server_gateway.directory_url)
    with pytest.raises(messages.Error) as caught:
        await asyncio.to_thread(order_replacing, other, ["ari.example.test"], cert_id(renewed))
    assert caught.value.typ == URN + "unauthorized"
    with pytest.raises(messages.Error) as caught:
        await asyncio.to_thread(order_replacing, acme, ["elsewhere.example.test"], cert_id(renewed))
    assert caught.value.typ == URN + "malformed"
    # None of the refused orders counts: the renewed certificate can still be replaced.
    await issue(acme, responder, ["ari.example.test"], replaces=cert_id(renewed))
