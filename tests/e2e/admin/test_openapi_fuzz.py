"""schemathesis against the live admin API: for every operation of ``/api/v1/openapi.json``,
generated valid and invalid requests (with the bearer token) never get a 5xx, and every
response conforms to the document (status, content type, headers, body schema); invalid data
is refused with a 4xx and the operations that need the token refuse a request without it.

Bounded for speed: a fixed number of examples per operation and mode, derandomised so a run
is reproducible. Revoke and rotate are fuzzed too: generated serials and platform names match
nothing (404), and the real certificate is revoked only at the end, on purpose.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from acmegate.testkit.apple_ca import AttestationCA
from tests.e2e.admin.conftest import AdminGateway

pytestmark = pytest.mark.e2e

EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
NEGATIVE_CHECKS = [*CHECKS, negative_data_rejection]


def fuzz(base_url: str, token: str, real_serial: str) -> tuple[list[str], Counter[str]]:
    """Run every operation in both modes: the failures (empty when all pass), and the
    statuses each operation answered (``"GET /api/v1/templates 200"`` → count)."""
    # The token through schemathesis' own auth (the document's bearerAuth scheme), so its
    # negative mode knows the header is sent on purpose.
    config = schemathesis.Config.from_dict(
        {"base-url": base_url, "auth": {"openapi": {"bearerAuth": {"bearer": token}}}}
    )
    schema = schemathesis.openapi.from_url(f"{base_url}/api/v1/openapi.json", config=config)
    failures: list[str] = []
    statuses: Counter[str] = Counter()

    def check(label: str, run: Callable[[], None]) -> None:
        try:
            run()
        except Unsatisfiable:
            pass  # no invalid input exists for this operation (no parameters, no body)
        except (Exception, BaseExceptionGroup) as exc:  # report every operation's failures
            failures.append(f"{label}: {exc}")

    def fuzzer(operation: schemathesis.APIOperation, mode: GenerationMode) -> Callable[[], None]:
        checks = NEGATIVE_CHECKS if mode is GenerationMode.NEGATIVE else CHECKS

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: schemathesis.Case) -> None:
            response = case.call_and_validate(checks=checks)
            statuses[f"{operation.label} {response.status_code}"] += 1

        return run  # type: ignore[no-any-return]

    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            check(f"{operation.label} [{mode.value}]", fuzzer(operation, mode))

    # A real certificate: shown, then revoked (and the auth check on an operation that acts).
    show = schema["/api/v1/certificates/{serial}"]["GET"]
    revoke = schema["/api/v1/certificates/{serial}/revoke"]["POST"]
    for label, case in (
        ("show the issued certificate", show.Case(path_parameters={"serial": real_serial})),
        (
            "revoke the issued certificate",
            revoke.Case(path_parameters={"serial": real_serial}, body={"reason": "superseded"}),
        ),
    ):

        def run_real(case: schemathesis.Case = case) -> None:
            # A hand-made case gets no generated auth: send the token, and let ignored_auth
            # check that the same request without it is refused.
            response = case.call_and_validate(
                headers={"Authorization": f"Bearer {token}"}, checks=[*CHECKS, ignored_auth]
            )
            statuses[f"{case.operation.label} {response.status_code}"] += 1

        check(label, run_real)
    return failures, statuses


async def test_every_operation_passes_schemathesis(
    admin: AdminGateway, attestation_ca: AttestationCA
) -> None:
    # Something in every list: an issued certificate, a completed and a failed enrollment.
    issued = await admin.enroll(attestation_ca, "C02E2E00001")
    assert issued.ok, issued.problems
    assert not (await admin.enroll(attestation_ca, "C02NOGROUP")).ok
    serial = format(issued.certificate.serial_number, "x")
    failures, statuses = await asyncio.to_thread(fuzz, admin.url, admin.token, serial)
    assert not failures, "\n\n".join(failures)
    # The token was sent: every operation without path parameters succeeded (not just 401s),
    # and the issued certificate was shown and revoked.
    for path in (
        "certificate-authorities",
        "templates",
        "platforms",
        "signal-sources",
        "lookup-policies",
        "certificates",
        "enrollments",
    ):
        assert statuses[f"GET /api/v1/{path} 200"] > 0, (
            path,
            "\n".join(f"{k}: {v}" for k, v in sorted(statuses.items())),
        )
    # The explicit phase tried the configured names (the document's examples).
    for operation in (
        "GET /api/v1/platforms/{name}/profile",
        "POST /api/v1/platforms/{name}/token/rotate",
        "POST /api/v1/signal-sources/{name}/validate",
        "POST /api/v1/lookup-policies/{name}/validate",
    ):
        assert statuses[f"{operation} 200"] > 0, operation
    assert statuses["GET /api/v1/certificates/{serial} 200"] >= 1
    assert statuses["POST /api/v1/certificates/{serial}/revoke 200"] == 1
    assert sum(statuses.values()) > 300
