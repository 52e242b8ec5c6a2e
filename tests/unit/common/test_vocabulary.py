"""The shared vocabulary is checked on the bus: a value outside it does not decode."""

from __future__ import annotations

import json

import msgspec
import pytest

from acmegate.common.admin_messages import (
    AdminCertificateCounts,
    AdminQueryCertificates,
    AdminRevokeCertificate,
)
from acmegate.common.bus import codec
from acmegate.common.errors import AcmeError
from acmegate.common.messages import (
    ChallengeVerified,
    Identifier,
    OrderFinalized,
    Problem,
    RevokeCertificates,
    Subproblem,
    VerifyChallenge,
)
from acmegate.common.vocabulary import (
    CertificateState,
    CertificateStatus,
    ChallengeType,
    ErrorKind,
    RevocationReason,
)


def _with(message: codec.Message, **changes: object) -> bytes:
    """``message`` as the bus carries it, with some JSON fields replaced."""
    body = json.loads(codec.encode(message))
    body.update(changes)
    return json.dumps(body).encode()


def _refused(body: bytes) -> str:
    with pytest.raises(msgspec.ValidationError) as caught:
        codec.decode(body)
    return str(caught.value)


def test_a_problem_of_an_unknown_kind_does_not_decode() -> None:
    result = OrderFinalized(
        correlation_id="c",
        order_id="o",
        problem=Problem(kind=ErrorKind.BAD_CSR, detail="no"),
    )
    decoded = codec.decode(codec.encode(result))
    assert isinstance(decoded, OrderFinalized) and decoded.problem is not None
    assert decoded.problem.kind is ErrorKind.BAD_CSR
    assert "$.problem.kind" in _refused(
        _with(result, problem={"kind": "badCsr", "detail": "no", "subproblems": []})
    )


def test_a_subproblem_of_an_unknown_kind_does_not_decode() -> None:
    sub = Subproblem(kind=ErrorKind.REJECTED_IDENTIFIER, detail="d", identifier=None)
    verdict = ChallengeVerified(
        correlation_id="c",
        challenge_id="ch",
        problem=Problem(ErrorKind.BAD_ATTESTATION_STATEMENT, "bad", subproblems=[sub]),
    )
    assert codec.decode(codec.encode(verdict)) == verdict
    body = json.loads(codec.encode(verdict))
    body["problem"]["subproblems"][0]["kind"] = "rejected"
    assert "$.problem.subproblems[0].kind" in _refused(json.dumps(body).encode())


def test_a_revocation_with_a_reason_outside_rfc_5280_does_not_decode() -> None:
    revoke = RevokeCertificates(
        correlation_id="c", reason=RevocationReason.KEY_COMPROMISE, serials=["ab"]
    )
    assert codec.decode(codec.encode(revoke)) == revoke
    for reason in ("certificateHold", "removeFromCRL", "1", "key_compromise"):
        assert "$.reason" in _refused(_with(revoke, reason=reason))
    admin = AdminRevokeCertificate(
        correlation_id="c", serial="ab", reason=RevocationReason.SUPERSEDED
    )
    assert "$.reason" in _refused(_with(admin, reason="lost"))


def test_a_challenge_of_another_type_does_not_decode() -> None:
    verify = VerifyChallenge(
        correlation_id="c",
        challenge_id="ch",
        authz_id="a",
        order_id="o",
        account_id="acct",
        challenge_type=ChallengeType.DEVICE_ATTEST_01,
        identifier=Identifier("permanent-identifier", "C02X"),
        token="t",
        payload=b"{}",
    )
    assert codec.decode(codec.encode(verify)) == verify
    assert "$.challenge_type" in _refused(_with(verify, challenge_type="email-reply-00"))


def test_certificate_statuses_are_the_stored_ones_and_counts_add_expired() -> None:
    query = AdminQueryCertificates(correlation_id="c", status=CertificateStatus.REVOKED)
    assert codec.decode(codec.encode(query)) == query
    # `expired` is derived from notAfter, never stored: a search cannot ask for it.
    assert "$.status" in _refused(_with(query, status="expired"))
    counts = AdminCertificateCounts(correlation_id="c", counts=[])
    body = _with(counts, counts=[{"ca": "devices", "status": "expired", "count": 2}])
    decoded = codec.decode(body)
    assert isinstance(decoded, AdminCertificateCounts)
    assert decoded.counts[0].status is CertificateState.EXPIRED
    assert "$.counts[0].status" in _refused(
        _with(counts, counts=[{"ca": "devices", "status": "lost", "count": 2}])
    )


def test_revocation_reasons_carry_their_rfc_5280_codes() -> None:
    assert {reason: reason.code for reason in RevocationReason} == {
        "unspecified": 0,
        "keyCompromise": 1,
        "cACompromise": 2,
        "affiliationChanged": 3,
        "superseded": 4,
        "cessationOfOperation": 5,
        "privilegeWithdrawn": 9,
        "aACompromise": 10,
    }
    assert RevocationReason.from_code(9) is RevocationReason.PRIVILEGE_WITHDRAWN
    for code in (6, 7, 8, 11, -1):
        with pytest.raises(ValueError, match=f"no revocation reason has code {code}"):
            RevocationReason.from_code(code)


def test_an_error_survives_the_bus_with_its_kind() -> None:
    error = AcmeError(
        ErrorKind.REJECTED_IDENTIFIER,
        "not this device",
        identifier=Identifier("permanent-identifier", "C02X"),
    )
    result = OrderFinalized(correlation_id="c", order_id="o", problem=error.to_problem())
    decoded = codec.decode(codec.encode(result))
    assert isinstance(decoded, OrderFinalized) and decoded.problem is not None
    assert AcmeError.from_problem(decoded.problem) == error


def test_a_certificate_state_is_revoked_before_expired() -> None:
    assert CertificateState.of(CertificateStatus.VALID, expired=False) is CertificateState.VALID
    assert CertificateState.of("valid", expired=True) is CertificateState.EXPIRED
    assert CertificateState.of("revoked", expired=True) is CertificateState.REVOKED
