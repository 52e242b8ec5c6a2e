"""The admin API against a running gateway: authentication, every resource, revoke, rotate."""

from __future__ import annotations

import plistlib
from pathlib import Path

import aiohttp
import pytest

from acmegate.cli.compose import running
from acmegate.common.config import load_config
from acmegate.testkit.apple_ca import AttestationCA
from acmegate.testkit.device import Stage
from tests.e2e.admin.conftest import AdminGateway, admin_config
from tests.support.gateway import Gateway

pytestmark = pytest.mark.e2e

PROBLEM = "application/problem+json"


async def raw(method: str, url: str, **kwargs: object) -> tuple[int, str, dict[str, object], str]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method,
            url,
            **kwargs,  # type: ignore[arg-type]
        ) as response,
    ):
        body = await response.text()
        return response.status, response.content_type, dict(response.headers), body


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic YWRtaW46YWRtaW4="}],
    ids=["missing", "wrong", "not-bearer"],
)
async def test_a_missing_or_wrong_token_is_a_401_problem(
    admin: AdminGateway, headers: dict[str, str]
) -> None:
    for method, path in (
        ("GET", "/api/v1/certificates"),
        ("GET", "/api/v1/enrollments"),
        ("POST", "/api/v1/platforms/jamf-macs/token/rotate"),
        ("GET", "/api/v1/no-such-thing"),
    ):
        status, content_type, response_headers, body = await raw(
            method, admin.url + path, headers=headers
        )
        assert status == 401, (path, body)
        assert content_type == PROBLEM
        assert '"type":"about:blank"' in body and '"status":401' in body
        assert "Traceback" not in body and admin.token not in body
        assert response_headers["WWW-Authenticate"].startswith("Bearer")


async def test_the_openapi_document_is_served_without_a_token(admin: AdminGateway) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(admin.url + "/api/v1/openapi.json") as response,
    ):
        document = await response.json()
    assert response.status == 200
    assert document["openapi"].startswith("3.")
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert "/api/v1/certificates/{serial}/revoke" in document["paths"]


async def test_lists_of_cas_templates_platforms_sources_and_lookups(admin: AdminGateway) -> None:
    status, body = await admin.get("/api/v1/certificate-authorities")
    assert status == 200, body
    [ca] = body["certificate_authorities"]
    assert ca["name"] == "devices" and "E2E Devices CA" in ca["subject"]
    assert ca["key_algorithm"] == "EC P-256" and ca["key_storage"].startswith("encrypted file")
    assert len(ca["chain"]) == 2 and ca["not_after"] > ca["not_before"]

    status, body = await admin.get("/api/v1/templates")
    assert status == 200 and [t["name"] for t in body["templates"]] == ["device"]
    assert body["templates"][0]["validity_seconds"] == 30 * 86400
    assert body["templates"][0]["csr_rules"]["/csr/san/othername"] == {
        "equals": ["${/source/email}"],
        "matches": [],
    }

    status, body = await admin.get("/api/v1/platforms")
    assert status == 200
    [platform] = body["platforms"]
    assert platform["name"] == "jamf-macs" and platform["client_identifier"] == "token"

    status, body = await admin.get("/api/v1/signal-sources")
    assert status == 200 and body["signal_sources"][0]["name"] == "inventory"

    status, body = await admin.get("/api/v1/lookup-policies")
    assert status == 200 and body["lookup_policies"][0]["signal_source"] == "inventory"


async def test_the_profile_downloads_as_a_mobileconfig_that_plistlib_parses(
    admin: AdminGateway,
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            admin.url + "/api/v1/platforms/jamf-macs/profile", headers=admin.headers
        ) as response,
    ):
        data = await response.read()
        assert response.status == 200
        assert response.content_type == "application/x-apple-aspen-config"
        assert 'filename="jamf-macs.mobileconfig"' in response.headers["Content-Disposition"]
    profile = plistlib.loads(data)
    [payload] = profile["PayloadContent"]
    assert payload["PayloadType"] == "com.apple.security.acme"
    assert payload["DirectoryURL"] == admin.gateway.directory_url
    assert payload["ClientIdentifier"].startswith("agt-")
    status, body = await admin.get("/api/v1/platforms/nope/profile")
    assert status == 404 and "no device management platform named 'nope'" in body["detail"]


async def test_a_rotated_token_is_refused_by_new_order(
    admin: AdminGateway, attestation_ca: AttestationCA
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            admin.url + "/api/v1/platforms/jamf-macs/profile", headers=admin.headers
        ) as response,
    ):
        old = plistlib.loads(await response.read())["PayloadContent"][0]["ClientIdentifier"]
    status, body = await admin.post("/api/v1/platforms/jamf-macs/token/rotate")
    assert status == 200, body
    assert body["platform"] == "jamf-macs" and body["token"] != old
    refused = await admin.enroll(attestation_ca, "C02E2E00001", identifier=old)
    assert refused.failed_stage is Stage.NEW_ORDER
    assert refused.problem is not None and refused.problem.kind == "rejectedIdentifier"
    accepted = await admin.enroll(attestation_ca, "C02E2E00001", identifier=body["token"])
    assert accepted.ok, accepted.problems
    status, body = await admin.post("/api/v1/platforms/nope/token/rotate")
    assert status == 404


async def test_validate_a_signal_source_and_a_lookup(admin: AdminGateway) -> None:
    status, body = await admin.post("/api/v1/signal-sources/inventory/validate")
    assert status == 200, body
    assert body == {"name": "inventory", "ok": True, "message": "5 devices (4 managed)"}
    status, body = await admin.post("/api/v1/signal-sources/nope/validate")
    assert status == 404 and "no signal source named 'nope'" in body["detail"]

    path = "/api/v1/lookup-policies/inventory-issuance/validate"
    status, body = await admin.post(path, {"identity": "C02E2E00001"})
    assert status == 200, body
    assert body["ok"] is True and body["message"] == "Account validation succeeded."
    assert body["attributes"]["email"] == "llama@example.com"
    assert body["groups"] == ["Cert-Eligible"]

    status, body = await admin.post(path, {"identity": "C02NOTKNOWN"})
    assert status == 200
    assert body["ok"] is False and body["message"] == "Account validation failed."
    assert "C02NOTKNOWN" in body["reason"]

    status, body = await admin.post(path, {"identity": 42})
    assert status == 400 and "$.identity" in body["detail"]
    status, body = await admin.post(path, {})
    assert status == 400 and "identity" in body["detail"]
    status, body = await admin.post("/api/v1/lookup-policies/nope/validate", {"identity": "x"})
    assert status == 404


async def test_certificates_search_show_and_revoke(
    admin: AdminGateway, attestation_ca: AttestationCA
) -> None:
    enrolled = await admin.enroll(attestation_ca, "C02E2E00002")
    assert enrolled.ok, enrolled.problems
    serial = format(enrolled.certificate.serial_number, "x")

    status, body = await admin.get("/api/v1/certificates", device="C02E2E00002")
    assert status == 200, body
    [listed] = body["certificates"]
    assert listed["serial"] == serial and listed["status"] == "valid"
    assert listed["ca"] == "devices" and listed["record"] is None

    status, body = await admin.get(f"/api/v1/certificates/{serial.upper()}")
    assert status == 200, body
    shown = body["certificate"]
    assert shown["serial"] == serial
    assert "permanentIdentifier: C02E2E00002" in shown["subject_alt_names"]
    assert shown["record"]["device"]["serial_number"] == "C02E2E00002"
    assert shown["record"]["enrollment_policy"] == "managed-apple-devices"
    assert shown["chain_pem"].startswith("-----BEGIN CERTIFICATE-----")

    path = f"/api/v1/certificates/{serial}/revoke"
    status, body = await admin.post(path, {"reason": "superseded-ish"})
    assert status == 400 and "$.reason" in body["detail"]
    status, body = await admin.post(path, {"reason": "keyCompromise"})
    assert status == 200, body
    assert body["revoked_now"] is True
    status, body = await admin.get(f"/api/v1/certificates/{serial}")
    assert body["certificate"]["status"] == "revoked"
    assert body["certificate"]["revocation_reason"] == "keyCompromise"
    status, body = await admin.post(path, {"reason": "keyCompromise"})
    assert status == 200 and body["revoked_now"] is False

    status, body = await admin.get("/api/v1/certificates", status="revoked")
    assert [c["serial"] for c in body["certificates"]] == [serial]
    status, body = await admin.get("/api/v1/certificates/abcdef0123")
    assert status == 404 and "abcdef0123" in body["detail"]
    status, body = await admin.post("/api/v1/certificates/abcdef0123/revoke", {})
    assert status == 404
    status, body = await admin.get("/api/v1/certificates/not-hex")
    assert status == 400 and body["detail"].startswith("serial:")
    status, body = await admin.get("/api/v1/certificates", limit="0")
    assert status == 400 and body["detail"].startswith("limit:")
    status, body = await admin.get("/api/v1/certificates", status="lost")
    assert status == 400 and body["detail"].startswith("status:")


async def test_enrollment_events_list_completed_and_failed(
    admin: AdminGateway, attestation_ca: AttestationCA
) -> None:
    assert (await admin.enroll(attestation_ca, "C02E2E00001")).ok
    refused = await admin.enroll(attestation_ca, "C02NOGROUP")
    assert refused.failed_stage is Stage.FINALIZE

    status, body = await admin.get("/api/v1/enrollments")
    assert status == 200, body
    assert [e["outcome"] for e in body["enrollments"]] == ["failed", "completed"]
    status, body = await admin.get("/api/v1/enrollments", outcome="failed")
    [failed] = body["enrollments"]
    assert failed["device_serial"] == "C02NOGROUP" and failed["reason"]
    status, body = await admin.get("/api/v1/enrollments", outcome="sideways")
    assert status == 400 and body["detail"].startswith("outcome:")


async def test_an_unanswered_rpc_is_a_503_problem_naming_the_service(
    tmp_path: Path, attestation_ca: AttestationCA, database_url: str, admin_token: str
) -> None:
    # The frontend alone: nobody serves the signer's or the policy service's requests.
    files, url = admin_config(tmp_path / "alone", attestation_ca)
    config = load_config(files.config_path)
    async with running(config, ["frontend"], database=database_url, in_process=True) as state:
        alone = AdminGateway(
            Gateway(files, config, state, state.runtime.require_pool()), url, admin_token
        )
        status, body = await alone.get("/api/v1/certificate-authorities")
        assert status == 503 and "the signer service did not answer" in body["detail"]
        status, body = await alone.post("/api/v1/signal-sources/inventory/validate")
        assert status == 503 and "the policy service did not answer" in body["detail"]
        # What the frontend knows itself still answers.
        status, body = await alone.get("/api/v1/enrollments")
        assert status == 200 and body == {"enrollments": []}
