"""http-01 end to end (RFC 8555 §8.3): certbot's ``acme`` library orders a server
certificate, pebble-challtestsrv serves the key authorization, openssl verifies the result."""

from __future__ import annotations

import asyncio
from pathlib import Path

from acme import challenges, messages
from cryptography import x509

from acmegate.testkit.apple_ca import AttestationCA
from tests.support.challtestsrv import ChallTestSrv
from tests.support.gateway import Gateway, gateway_config, running_gateway
from tests.support.openssl import verify_client_chain
from tests.support.server_certs import (
    account,
    add_server_policy,
    challenge_of,
    deadline,
    server_csr,
)

SERVER_AUTH = x509.oid.ExtendedKeyUsageOID.SERVER_AUTH


async def test_http01_issues_a_server_certificate_that_openssl_accepts_for_tls_servers(
    server_gateway: Gateway, responder: ChallTestSrv, tmp_path: Path
) -> None:
    acme = await asyncio.to_thread(account, server_gateway.directory_url)
    names = ["radius.example.test", "127.0.0.1"]
    order = await asyncio.to_thread(acme.new_order, server_csr(names))
    assert [a.body.identifier.value for a in order.authorizations] == names
    for authz in order.authorizations:
        offered = sorted(c.to_partial_json()["type"] for c in authz.body.challenges)
        if authz.body.identifier.typ == messages.IDENTIFIER_IP:
            assert offered == ["http-01", "tls-alpn-01"]  # RFC 8738 §7: no dns-01 for IPs
        else:
            assert offered == ["dns-01", "http-01", "tls-alpn-01"]
        challb = challenge_of(authz, challenges.HTTP01)
        response, validation = challb.response_and_validation(acme.net.key)
        await responder.add_http01(challb.chall.encode("token"), validation)
        await asyncio.to_thread(acme.answer_challenge, challb, response)

    final = await asyncio.to_thread(acme.poll_and_finalize, order, deadline())

    assert final.body.status == messages.STATUS_VALID
    leaf = x509.load_pem_x509_certificate(final.fullchain_pem.encode())
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["radius.example.test"]
    assert [str(a) for a in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    ekus = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(ekus) == [SERVER_AUTH]
    verdict = verify_client_chain(
        server_gateway.files.root_pem, final.fullchain_pem, tmp_path, purpose="sslserver"
    )
    assert verdict.endswith(": OK"), verdict


async def test_http01_over_rabbitmq_issues_a_certificate(
    tmp_path: Path,
    attestation_ca: AttestationCA,
    database_url: str,
    amqp_server_url: str,
    bus_namespace: str,
    responder: ChallTestSrv,
) -> None:
    """The validation queue (`attestation.validate`) on the real broker, as deployed."""
    files = gateway_config(tmp_path / "gateway", attestation_ca, namespace=bus_namespace)
    add_server_policy(files.config_path, responder)
    async with running_gateway(files, database_url, amqp_url=amqp_server_url) as gateway:
        acme = await asyncio.to_thread(account, gateway.directory_url)
        order = await asyncio.to_thread(acme.new_order, server_csr(["amqp.example.test"]))
        challb = challenge_of(order.authorizations[0], challenges.HTTP01)
        response, validation = challb.response_and_validation(acme.net.key)
        await responder.add_http01(challb.chall.encode("token"), validation)
        await asyncio.to_thread(acme.answer_challenge, challb, response)
        final = await asyncio.to_thread(acme.poll_and_finalize, order, deadline())
    verdict = verify_client_chain(
        files.root_pem, final.fullchain_pem, tmp_path, purpose="sslserver"
    )
    assert verdict.endswith(": OK"), verdict
