"""certbot's ``acme`` library (PyPI) as a client of its own: its standalone http-01 server
on the server's validation port, then obtain, renew (a new order, a new key) and revoke."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from acme import challenges, client
from acme.standalone import HTTP01RequestHandler, HTTP01Server

from tests.support.acme_clients import AcmeServer, verify_server_chain
from tests.support.server_certs import account, challenge_of, deadline, server_csr

pytestmark = [pytest.mark.e2e, pytest.mark.acme_clients]

SUPERSEDED = 4  # RFC 5280 §5.3.1 CRLReason


@pytest.fixture
def http01_resources(acme_server: AcmeServer) -> Iterator[set[HTTP01RequestHandler.HTTP01Resource]]:
    """The library's http-01 server on the port the ACME server validates on."""
    resources: set[HTTP01RequestHandler.HTTP01Resource] = set()
    server = HTTP01Server(("127.0.0.1", acme_server.http_port), resources)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield resources
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def issue(
    acme: client.ClientV2, name: str, resources: set[HTTP01RequestHandler.HTTP01Resource]
) -> str:
    order = acme.new_order(server_csr([name]))
    for authzr in order.authorizations:
        challb = challenge_of(authzr, challenges.HTTP01)
        response, validation = challb.response_and_validation(acme.net.key)
        resources.add(HTTP01RequestHandler.HTTP01Resource(challb.chall, response, validation))
        acme.answer_challenge(challb, response)
    return str(acme.poll_and_finalize(order, deadline()).fullchain_pem)


async def test_acme_library_http01(
    acme_server: AcmeServer,
    http01_resources: set[HTTP01RequestHandler.HTTP01Resource],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable, value in acme_server.client_env().items():
        monkeypatch.setenv(variable, value)  # requests reads REQUESTS_CA_BUNDLE
    name, chain = "files.example.test", tmp_path / "fullchain.pem"
    acme = await asyncio.to_thread(account, acme_server.directory_url)

    chain.write_text(await asyncio.to_thread(issue, acme, name, http01_resources))
    first = await verify_server_chain(acme_server.root_pem, chain, name)
    chain.write_text(await asyncio.to_thread(issue, acme, name, http01_resources))
    renewed = await verify_server_chain(acme_server.root_pem, chain, name)
    assert renewed.serial_number != first.serial_number

    await asyncio.to_thread(acme.revoke, renewed, SUPERSEDED)
    assert await acme_server.revoked(renewed, tmp_path)
    assert not await acme_server.revoked(first, tmp_path)
