"""dns-01 (RFC 8555 §8.4), tls-alpn-01 (RFC 8737) and wildcards end to end, and each
challenge's failure modes with the ACME problem a client sees (RFC 8555 §6.7)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import josepy
import pytest
from acme import challenges, messages
from cryptography import x509

from acmegate.testkit.apple_ca import AttestationCA
from tests.support.challtestsrv import ChallTestSrv, nxdomain_server
from tests.support.gateway import Gateway, free_port, gateway_config, running_gateway
from tests.support.openssl import verify_client_chain
from tests.support.server_certs import (
    CA_IDENTITY,
    account,
    add_server_policy,
    answer,
    challenge_named,
    deadline,
    failed_problem,
    key_authorization,
    server_csr,
    token_of,
)
from tests.support.tls_alpn import tls_alpn_responder

URN = "urn:ietf:params:acme:error:"


def _dns01_value(acme: Any, token: str) -> str:
    # The acme library keeps tokens decoded (bytes); ours travel base64url.
    return str(challenges.DNS01(token=josepy.b64.b64decode(token)).validation(acme.net.key))


async def _order(gateway: Gateway, names: list[str]) -> tuple[Any, messages.OrderResource]:
    acme = await asyncio.to_thread(account, gateway.directory_url)
    order = await asyncio.to_thread(acme.new_order, server_csr(names))
    return acme, order


async def test_dns01_issues_a_wildcard_certificate(
    server_gateway: Gateway, responder: ChallTestSrv, tmp_path: Path
) -> None:
    acme, order = await _order(server_gateway, ["*.wild.example.test"])
    (authz,) = order.authorizations
    # RFC 8555 §7.1.4: the base name, flagged wildcard, and only dns-01 (§7.1.3).
    assert authz.body.identifier.value == "wild.example.test"
    assert authz.body.wildcard is True
    assert [c.to_partial_json()["type"] for c in authz.body.challenges] == ["dns-01"]
    challb = challenge_named(authz, "dns-01")
    token = token_of(challb)
    txt = await asyncio.to_thread(_dns01_value, acme, token)
    await responder.set_txt("_acme-challenge.wild.example.test", txt)
    await asyncio.to_thread(answer, acme, challb)

    final = await asyncio.to_thread(acme.poll_and_finalize, order, deadline())

    leaf = x509.load_pem_x509_certificate(final.fullchain_pem.encode())
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["*.wild.example.test"]
    verdict = verify_client_chain(
        server_gateway.files.root_pem, final.fullchain_pem, tmp_path, purpose="sslserver"
    )
    assert verdict.endswith(": OK"), verdict


async def test_tls_alpn01_issues_a_certificate(
    server_gateway: Gateway, responder: ChallTestSrv, tmp_path: Path
) -> None:
    acme, order = await _order(server_gateway, ["vpn.example.test"])
    challb = challenge_named(order.authorizations[0], "tls-alpn-01")
    await responder.add_tlsalpn01(
        "vpn.example.test", await asyncio.to_thread(key_authorization, acme, token_of(challb))
    )
    await asyncio.to_thread(answer, acme, challb)

    final = await asyncio.to_thread(acme.poll_and_finalize, order, deadline())

    verdict = verify_client_chain(
        server_gateway.files.root_pem, final.fullchain_pem, tmp_path, purpose="sslserver"
    )
    assert verdict.endswith(": OK"), verdict


# --- failure modes -------------------------------------------------------------------------


async def _fails_with(gateway: Gateway, kind: str, name: str = "srv.example.test") -> str:
    """Answer ``kind`` for ``name`` without anything set up beforehand unless the caller
    did; return the challenge problem's type and detail."""
    acme, order = await _order(gateway, [name])
    challb = challenge_named(order.authorizations[0], kind)
    await asyncio.to_thread(answer, acme, challb)
    problem = await asyncio.to_thread(failed_problem, acme, order)
    return f"{problem['type']} {problem.get('detail', '')}"


@pytest.mark.parametrize("kind", ["http-01", "dns-01", "tls-alpn-01"])
async def test_a_wrong_key_authorization_is_an_incorrect_response(
    server_gateway: Gateway, responder: ChallTestSrv, kind: str
) -> None:
    acme, order = await _order(server_gateway, ["srv.example.test"])
    challb = challenge_named(order.authorizations[0], kind)
    token = token_of(challb)
    wrong = f"{token}.not-the-account-thumbprint"
    if kind == "http-01":
        await responder.add_http01(token, wrong)
    elif kind == "dns-01":
        await responder.set_txt("_acme-challenge.srv.example.test", "bm90LXRoZS1kaWdlc3Q")
    else:
        await responder.add_tlsalpn01("srv.example.test", wrong)
    await asyncio.to_thread(answer, acme, challb)

    problem = await asyncio.to_thread(failed_problem, acme, order)

    assert problem["type"] == URN + "incorrectResponse", problem
    assert problem["identifier"] == {"type": "dns", "value": "srv.example.test"}


@pytest.mark.parametrize("kind", ["http-01", "dns-01"])
async def test_a_wrong_token_is_an_incorrect_response(
    server_gateway: Gateway, responder: ChallTestSrv, kind: str
) -> None:
    acme, order = await _order(server_gateway, ["srv.example.test"])
    challb = challenge_named(order.authorizations[0], kind)
    # The responder answers for another token: what a client with a stale token publishes.
    stale = "c3RhbGUtdG9rZW4tb2YtYW5vdGhlci1vcmRlcg"
    if kind == "http-01":
        await responder.add_http01(stale, await asyncio.to_thread(key_authorization, acme, stale))
    else:
        await responder.set_txt(
            "_acme-challenge.srv.example.test", await asyncio.to_thread(_dns01_value, acme, stale)
        )
    await asyncio.to_thread(answer, acme, challb)

    problem = await asyncio.to_thread(failed_problem, acme, order)

    assert problem["type"] == URN + "incorrectResponse", problem


async def test_caa_naming_another_ca_forbids_issuance(
    server_gateway: Gateway, responder: ChallTestSrv
) -> None:
    # The record sits on the parent: RFC 8659 §3 climbs the tree to it.
    await responder.add_caa("example.test", [{"tag": "issue", "value": "other-ca.example"}])
    acme, order = await _order(server_gateway, ["caa.example.test"])
    challb = challenge_named(order.authorizations[0], "http-01")
    token = token_of(challb)
    await responder.add_http01(token, await asyncio.to_thread(key_authorization, acme, token))
    await asyncio.to_thread(answer, acme, challb)

    problem = await asyncio.to_thread(failed_problem, acme, order)

    assert problem["type"] == URN + "caa", problem
    assert "other-ca.example" in problem["detail"]


async def test_caa_naming_this_ca_permits_issuance(
    server_gateway: Gateway, responder: ChallTestSrv
) -> None:
    await responder.add_caa("ok.example.test", [{"tag": "issue", "value": CA_IDENTITY}])
    acme, order = await _order(server_gateway, ["ok.example.test"])
    challb = challenge_named(order.authorizations[0], "http-01")
    token = token_of(challb)
    await responder.add_http01(token, await asyncio.to_thread(key_authorization, acme, token))
    await asyncio.to_thread(answer, acme, challb)

    final = await asyncio.to_thread(acme.poll_and_finalize, order, deadline())

    assert final.body.status == messages.STATUS_VALID


@contextlib.asynccontextmanager
async def _gateway_with(
    tmp_path: Path,
    attestation_ca: AttestationCA,
    database_url: str,
    responder: ChallTestSrv | None,
    validation: dict[str, Any],
) -> AsyncIterator[Gateway]:
    files = gateway_config(tmp_path / "gateway", attestation_ca)
    add_server_policy(files.config_path, responder, validation=validation)
    async with running_gateway(files, database_url) as gateway:
        yield gateway


@pytest.mark.parametrize("kind", ["http-01", "tls-alpn-01"])
async def test_an_unreachable_server_is_a_connection_problem(
    tmp_path: Path,
    attestation_ca: AttestationCA,
    database_url: str,
    responder: ChallTestSrv,
    kind: str,
) -> None:
    closed = free_port()  # nobody listens there
    validation = {"http_port": closed, "tls_alpn_port": closed}
    async with _gateway_with(tmp_path, attestation_ca, database_url, responder, validation) as gw:
        outcome = await _fails_with(gw, kind)
    assert outcome.startswith(URN + "connection "), outcome


@pytest.mark.parametrize("kind", ["http-01", "dns-01", "tls-alpn-01"])
async def test_nxdomain_is_a_dns_problem(
    tmp_path: Path,
    attestation_ca: AttestationCA,
    database_url: str,
    responder: ChallTestSrv,
    kind: str,
) -> None:
    async with nxdomain_server() as nameserver:
        validation = {"resolver": {"nameservers": [nameserver], "timeout": "2s"}}
        async with _gateway_with(
            tmp_path, attestation_ca, database_url, responder, validation
        ) as gateway:
            outcome = await _fails_with(gateway, kind)
    assert outcome.startswith(URN + "dns "), outcome
    assert "NXDOMAIN" in outcome


async def test_http01_follows_a_redirect_on_the_http_port(
    server_gateway: Gateway, responder: ChallTestSrv
) -> None:
    acme, order = await _order(server_gateway, ["moved.example.test"])
    challb = challenge_named(order.authorizations[0], "http-01")
    token = token_of(challb)
    elsewhere = "bW92ZWQtaGVyZQ"
    await responder.add_http01(elsewhere, await asyncio.to_thread(key_authorization, acme, token))
    await responder.add_redirect(
        f"/.well-known/acme-challenge/{token}",
        f"http://moved.example.test:{responder.http_port}/.well-known/acme-challenge/{elsewhere}",
    )
    await asyncio.to_thread(answer, acme, challb)

    final = await asyncio.to_thread(acme.poll_and_finalize, order, deadline())

    assert final.body.status == messages.STATUS_VALID


async def test_http01_refuses_a_redirect_to_another_port(
    server_gateway: Gateway, responder: ChallTestSrv
) -> None:
    acme, order = await _order(server_gateway, ["redirect.example.test"])
    challb = challenge_named(order.authorizations[0], "http-01")
    token = token_of(challb)
    await responder.add_redirect(
        f"/.well-known/acme-challenge/{token}", "http://redirect.example.test:22/somewhere"
    )
    await asyncio.to_thread(answer, acme, challb)

    problem = await asyncio.to_thread(failed_problem, acme, order)

    assert problem["type"] == URN + "connection", problem
    assert "only http on port 80 and https on port 443" in problem["detail"]


async def test_tls_alpn01_proves_an_ip_address(
    tmp_path: Path, attestation_ca: AttestationCA, database_url: str
) -> None:
    """RFC 8738 §6: SNI is the reverse name, the certificate names the iPAddress."""
    tls_port = free_port()
    validation = {"tls_alpn_port": tls_port}
    async with _gateway_with(tmp_path, attestation_ca, database_url, None, validation) as gw:
        acme, order = await _order(gw, ["127.0.0.1"])
        challb = challenge_named(order.authorizations[0], "tls-alpn-01")
        key_authz = await asyncio.to_thread(key_authorization, acme, token_of(challb))
        async with tls_alpn_responder("127.0.0.1", key_authz, tmp_path, port=tls_port):
            await asyncio.to_thread(answer, acme, challb)
            final = await asyncio.to_thread(acme.poll_and_finalize, order, deadline())

    leaf = x509.load_pem_x509_certificate(final.fullchain_pem.encode())
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(a) for a in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


async def test_http01_reads_no_more_than_max_body_bytes(
    server_gateway: Gateway, responder: ChallTestSrv
) -> None:
    acme, order = await _order(server_gateway, ["big.example.test"])
    challb = challenge_named(order.authorizations[0], "http-01")
    token = token_of(challb)
    padded = await asyncio.to_thread(key_authorization, acme, token) + "x" * 10_000
    await responder.add_http01(token, padded)
    await asyncio.to_thread(answer, acme, challb)

    problem = await asyncio.to_thread(failed_problem, acme, order)

    assert problem["type"] == URN + "incorrectResponse", problem
    assert "more than 8192 bytes" in problem["detail"]
