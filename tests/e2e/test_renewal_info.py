"""ACME Renewal Information (RFC 9773): the directory names ``renewalInfo``; a GET for a
certificate's certID suggests the last third of its validity (minus the final sixth), a window
already passed once it is revoked, with ``Retry-After``; odd or unknown certIDs get problems."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import aiohttp
import pytest

from acmegate.frontend.renewal_info import cert_id_of
from acmegate.testkit.acme_session import AcmeSession
from acmegate.testkit.apple_ca import AttestationCA
from tests.e2e.test_pki_revocation import enroll, result_of, revoke_cert
from tests.support.gateway import Gateway

pytestmark = pytest.mark.e2e


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def _get(url: str) -> tuple[int, dict[str, object], aiohttp.typedefs.LooseHeaders]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.json(content_type=None), response.headers


async def test_renewal_info_suggests_a_window_and_asks_for_renewal_once_revoked(
    gateway: Gateway, attestation_ca: AttestationCA
) -> None:
    device = await enroll(gateway, attestation_ca, "C02E2E00001")
    certificate = result_of(device).certificate
    assert certificate is not None
    async with AcmeSession(
        gateway.directory_url, device.account, account_url=result_of(device).account_url
    ) as acme:
        base = (await acme.directory())["renewalInfo"]
        url = f"{base}/{cert_id_of(certificate)}"

        status, body, headers = await _get(url)
        assert status == 200, body
        window = body["suggestedWindow"]
        assert isinstance(window, dict)
        start, end = _time(window["start"]), _time(window["end"])
        not_before = certificate.not_valid_before_utc
        lifetime = certificate.not_valid_after_utc - not_before
        assert not_before + lifetime * 0.6 < start < end < certificate.not_valid_after_utc
        assert headers["Retry-After"].isdigit() and int(headers["Retry-After"]) > 0

        assert (await revoke_cert(acme, certificate, reason=1)).status == 200
        status, body, _ = await _get(url)
        assert status == 200, body
        window = body["suggestedWindow"]
        assert isinstance(window, dict)
        assert _time(window["end"]) <= datetime.now(UTC), "renew now: the window has passed"


async def test_unknown_or_malformed_cert_ids_are_problems(gateway: Gateway) -> None:
    async with AcmeSession(gateway.directory_url) as acme:
        base = (await acme.directory())["renewalInfo"]
    unknown_aki = base64.urlsafe_b64encode(b"\x01" * 20).decode().rstrip("=")
    status, body, _ = await _get(f"{base}/{unknown_aki}.AQID")
    assert status == 404 and body["type"] == "urn:ietf:params:acme:error:malformed", body
    for garbage in ("no-dot", "a=.b", ".AQID", "AQID.", "AQID.gA"):
        status, body, _ = await _get(f"{base}/{garbage}")
        assert status == 400, (garbage, body)
        assert body["type"] == "urn:ietf:params:acme:error:malformed"
