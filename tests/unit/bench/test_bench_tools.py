"""The benchmark's own arithmetic: profile attribution, percentiles, count differences, the
crypto floor and the phases of a plan (the benchmark itself runs outside the test suite)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import flame
from bench.enroll import Plan, count_difference
from bench.floor import Floor, measure
from bench.load import percentiles

_ROOT = "<module> (cli/main.py:41);run (uvloop/__init__.py:92)"
_AUTH = f"{_ROOT};authenticate (frontend/auth.py:100)"
_RAW = "\n".join(
    [
        f"{_AUTH};verify (frontend/jws.py:98);sign (cryptography/hazmat/primitives/ec.py:9) 30",
        f"{_AUTH};match (re/__init__.py:166) 10",
        f"{_ROOT};_do_execute (asyncpg/connection.py:1800) 50",
        f"{_ROOT} 10",
    ]
)


def test_profile_layers_take_the_innermost_known_frame(tmp_path: Path) -> None:
    raw = tmp_path / "standalone-x1-standalone.txt"
    raw.write_text(_RAW)
    report = flame.analyse(raw, cpu_ms=10.0, top=5)

    assert report["samples"] == 100
    # A stdlib frame (re) called by acmegate is acmegate's; uvloop's own samples are the loop's.
    assert report["layers"] == {
        "asyncpg (PostgreSQL client)": 5.0,
        "crypto (cryptography, OpenSSL)": 3.0,
        "acmegate": 1.0,
        "event loop (uvloop, asyncio)": 1.0,
    }
    assert report["acmegate_inclusive"]["authenticate (frontend/auth.py)"] == 4.0
    assert report["self"]["_do_execute (asyncpg/connection.py)"] == 5.0
    assert report["on_cpu_by_library_perf"] == {}


def test_percentiles_are_milliseconds_of_the_sorted_values() -> None:
    values = [i / 1000 for i in range(1, 101)]  # 1 … 100 ms
    got = percentiles(values)
    assert (got["p50"], got["p90"], got["p99"], got["max"]) == (51.0, 91.0, 100.0, 100.0)
    assert got["mean"] == pytest.approx(50.5)
    assert percentiles([]) == {}


def test_counts_per_enrollment_are_the_difference_of_two_snapshots() -> None:
    before = {"frontend": {"statements": {"SELECT 1": 10}, "messages": {"publish q M": 2}}}
    after = {
        "frontend": {
            "statements": {"SELECT 1": 30, "BEGIN;": 10},
            "messages": {"publish q M": 12},
            "waited_seconds": {"SELECT 1": 0.5},
        }
    }
    report = count_difference(before, after, enrollments=10)["frontend"]
    assert report["statements"] == {"SELECT 1": 2.0, "BEGIN;": 1.0}
    assert report["statements_per_enrollment"] == 3.0
    assert report["messages_per_enrollment"] == 1.0
    assert report["statement_wait_ms_per_enrollment"] == {"SELECT 1": 50.0}


def test_the_floor_counts_every_jws_two_p384_verifications_and_one_signature() -> None:
    floor = Floor(
        es256_verify_us=50,
        p384_verify_us=300,
        ca_sign_us=20,
        jws_per_enrollment=6,
        ca_key_type="ec-p256",
    )
    assert floor.ms_per_enrollment == pytest.approx((6 * 50 + 2 * 300 + 20) / 1000)
    measured = measure(6, ca_key_type="ec-p256", iterations=5)
    assert 0 < measured.es256_verify_us < measured.p384_verify_us


def test_a_plan_runs_the_closed_loop_then_one_open_phase_per_rate() -> None:
    plan = Plan(
        concurrency=64,
        devices=1000,
        warmup=10,
        rates=(50.0, 150.0),
        duration=10.0,
        profile=None,
        native=False,
        profile_rate=100,
        perf=False,
        count_sql=False,
        unacked=False,
    )
    assert plan.phases() == [("closed 64", 1000), ("open 50/s", 700), ("open 150/s", 2000)]
    no_closed = Plan(**{**plan.__dict__, "devices": 0})
    assert [label for label, _ in no_closed.phases()] == ["open 50/s", "open 150/s"]
