"""The deferred checks of a request ride on its first statement; CHECKED leaves it alone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from acmegate.common.errors import AcmeError, ErrorKind
from acmegate.frontend.db.gate import CHECKED, Gate, StaleAccount, check, gated
from acmegate.frontend.nonces import RedeemableNonce

QUERY = "SELECT id FROM acme.orders WHERE id = $1"
GATE = Gate(RedeemableNonce(7, datetime(2026, 3, 1, tzinfo=UTC)), "acct-1", "thumb")


def test_a_checked_request_reads_as_it_is() -> None:
    assert gated(QUERY, ["o1"], CHECKED) == (QUERY, ["o1"])
    check(None, CHECKED)
    check({"gate_fresh": False, "gate_account": False}, CHECKED)  # type: ignore[arg-type]


def test_a_gate_redeems_the_nonce_and_checks_the_account_in_the_same_statement() -> None:
    sql, params = gated(QUERY, ["o1"], GATE)
    # The read's own parameters first, then the gate's, numbered after them.
    assert params == ["o1", 7, GATE.nonce.expires, "acct-1", "thumb"]
    assert "INSERT INTO acme.used_nonces (id, expires) VALUES ($2, $3)" in sql
    assert "WHERE id = $4 AND thumbprint = $5 AND status = 'valid'" in sql
    assert f"LEFT JOIN ({QUERY}) AS gated ON true" in sql


def test_what_the_gate_found_is_the_problem() -> None:
    check({"gate_fresh": True, "gate_account": True}, GATE)  # type: ignore[arg-type]
    with pytest.raises(AcmeError) as replay:
        check({"gate_fresh": False, "gate_account": True}, GATE)  # type: ignore[arg-type]
    assert replay.value.kind is ErrorKind.BAD_NONCE
    with pytest.raises(StaleAccount) as stale:
        check({"gate_fresh": True, "gate_account": False}, GATE)  # type: ignore[arg-type]
    assert stale.value.kind is ErrorKind.UNAUTHORIZED and stale.value.account_id == "acct-1"
