"""A database outage as clients see it (issue #12 item 3): ``503`` with ``Retry-After`` and a
problem document on the ACME, admin and RADIUS edges, never a ``500``; one log line when the
outage starts and one when it ends, not a traceback per request; service as before once the
database is back.

The gateway reaches the shared PostgreSQL through a link the test cuts (every connection
reset, new ones refused), which is what the gateway sees of a stopped server, without stopping
the shared one.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import pytest
from structlog.testing import capture_logs

from acmegate.testkit.acme_session import AcmeSession
from acmegate.testkit.apple_ca import AttestationCA, LeafClaims
from acmegate.testkit.device import SimulatedDevice
from tests.support.cuttable import CuttableLink, cuttable_link
from tests.support.edges import Edges, running_edges
from tests.support.gateway import free_port

pytestmark = pytest.mark.e2e

ADMIN_TOKEN_ENV = "ACMEGATE_TEST_OUTAGE_ADMIN_TOKEN"
SERVER_INTERNAL = "urn:ietf:params:acme:error:serverInternal"


def _through(url: str, port: int) -> tuple[str, tuple[str, int]]:
    """``url`` rewritten to reach its server through ``127.0.0.1:port``; (url, upstream)."""
    parts = urlsplit(url)
    upstream = (parts.hostname or "127.0.0.1", parts.port or 5432)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc)), upstream


@dataclass
class Outage:
    edges: Edges
    link: CuttableLink


@pytest.fixture
async def outage(
    tmp_path: Path,
    attestation_ca: AttestationCA,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Outage]:
    proxied, upstream = _through(database_url, free_port())
    async with (
        cuttable_link(urlsplit(proxied).port or 0, upstream) as link,
        running_edges(
            tmp_path / "gateway",
            attestation_ca,
            proxied,
            monkeypatch,
            admin_token_env=ADMIN_TOKEN_ENV,
        ) as edges,
    ):
        yield Outage(edges, link)


async def _signed(acme: AcmeSession, url: str, payload: dict[str, Any]) -> dict[str, str]:
    return acme.sign(url, payload, nonce=await acme.take_nonce())


async def _radius(http: aiohttp.ClientSession, edges: Edges, chain_pem: str) -> int:
    async with http.post(
        f"{edges.radius_url}/radius/authorize",
        data=chain_pem.encode(),
        headers={
            "Authorization": f"Bearer {edges.radius_token}",
            "Content-Type": "application/x-pem-file",
        },
    ) as response:
        await response.read()
        return response.status


async def _admin(http: aiohttp.ClientSession, edges: Edges) -> tuple[int, dict[str, Any], str]:
    async with http.get(
        f"{edges.admin_url}/api/v1/certificates",
        headers={"Authorization": f"Bearer {edges.admin_token}"},
    ) as response:
        body = await response.json(content_type=None)
        return response.status, body, response.headers.get("Retry-After", "")


async def test_a_database_outage_is_503_with_retry_after_on_every_edge_and_logged_once(
    outage: Outage, attestation_ca: AttestationCA
) -> None:
    edges, link = outage.edges, outage.link
    serial = "C02E2E00001"
    device = SimulatedDevice(edges.directory_url, serial, LeafClaims.macos(serial), attestation_ca)
    try:
        enrolled = await device.enroll()
    finally:
        await device.close()
    assert enrolled.ok and enrolled.certificate_chain_pem is not None, enrolled.problem
    chain_pem = enrolled.certificate_chain_pem

    order = {"identifiers": [{"type": "permanent-identifier", "value": serial}]}
    async with (
        AcmeSession(edges.directory_url) as acme,
        aiohttp.ClientSession() as http,
    ):
        await acme.new_account()
        new_order = await acme.url_of("newOrder")
        assert (await _radius(http, edges, chain_pem)) == 204

        with capture_logs() as logs:
            await link.cut()
            statuses: Counter[int] = Counter()
            for _ in range(10):
                answer = await acme.post_raw(new_order, await _signed(acme, new_order, order))
                statuses[answer.status] += 1
                assert answer.status == 503, answer.text
                assert answer.content_type == "application/problem+json"
                document = answer.json_object()
                assert document["type"] == SERVER_INTERNAL
                assert document["status"] == 503
                assert "is unavailable; retry later" in document["detail"]
                assert answer.headers.get("Retry-After", "").isdigit()
                assert answer.nonce, "a 503 carries a fresh Replay-Nonce too"
            status, body, retry = await _admin(http, edges)
            assert (status, body["status"]) == (503, 503), body
            assert retry.isdigit()
            assert (await _radius(http, edges, chain_pem)) == 503

            await link.restore()
            # The pool replaces the connections the outage broke; within seconds the same
            # request succeeds.
            for _ in range(50):
                answer = await acme.post_raw(new_order, await _signed(acme, new_order, order))
                if answer.status != 503:
                    break
                await asyncio.sleep(0.2)
            assert answer.status == 201, answer.text
            assert (await _admin(http, edges))[0] == 200
            assert (await _radius(http, edges, chain_pem)) == 204

    assert set(statuses) == {503}
    outage_lines = [e for e in logs if e["event"].startswith("dependency unavailable")]
    back_lines = [e for e in logs if e["event"] == "dependency available again"]
    # (RADIUS answers 503 through its signer check, which says so itself.)
    assert {e.get("listener") for e in outage_lines} >= {"acme", "admin"}, outage_lines
    assert len([e for e in outage_lines if e.get("listener") == "acme"]) == 1, outage_lines
    acme_back = [e for e in back_lines if e.get("listener") == "acme"]
    assert len(acme_back) == 1 and acme_back[0]["outage_seconds"] >= 0, back_lines
    assert not [e for e in logs if e["event"] in ("unhandled error", "admin request failed")]
