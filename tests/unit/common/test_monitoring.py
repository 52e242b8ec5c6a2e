"""The Grafana dashboard and the Prometheus alert rules in deploy/ use metrics that exist,
and the rules pass promtool's checks and their own unit tests."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

import acmegate.common.metrics  # noqa: F401 - registers every acmegate metric

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "deploy" / "grafana" / "acmegate.json"
RULES = ROOT / "deploy" / "prometheus" / "acmegate-alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "acmegate-alerts.test.yml"
OPERATIONS = ROOT / "docs" / "operations.md"
_METRIC = re.compile(r"\b(acmegate_[a-z0-9_]+|process_[a-z_]+|up)\b")


def exported() -> set[str]:
    """Every sample name this process's registry can produce."""
    names = {"up"}  # Prometheus' own, per scrape target
    for family in REGISTRY.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {f"{family.name}_{suffix}" for suffix in ("bucket", "count", "sum")}
        else:
            names.add(family.name)
    return names


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def alert_rules() -> list[dict[str, object]]:
    rules: list[dict[str, object]] = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    return rules


def test_the_dashboard_and_the_alerts_use_only_metrics_acmegate_exports() -> None:
    known = exported()
    queries = dashboard_queries() + [str(rule["expr"]) for rule in alert_rules()]
    used = {name for query in queries for name in _METRIC.findall(query)}
    assert used - known == set()
    # And the other way round, the dashboard shows every acmegate metric.
    shown = {name for query in dashboard_queries() for name in _METRIC.findall(query)}
    families = {re.sub(r"_(bucket|count|sum)$", "", n) for n in known if n.startswith("acmegate_")}
    assert {f for f in families if not any(s.startswith(f) for s in shown)} == set()


def test_the_dashboard_is_well_formed() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert "$job" in target["expr"], (panel["title"], target["expr"])
            assert target["datasource"]["uid"] == "${datasource}"


def test_every_alert_has_a_runbook_in_the_operations_guide() -> None:
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in OPERATIONS.read_text().splitlines()
        if line.startswith("#")
    }
    for rule in alert_rules():
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        anchor = str(annotations["runbook_url"]).rpartition("#")[2]
        assert anchor in headings, (rule["alert"], anchor)


@pytest.fixture
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (Debian package `prometheus`)")
    return found


def test_promtool_accepts_the_rules(promtool: str) -> None:
    done = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in done.stdout


def test_the_rules_fire_when_they_should(promtool: str) -> None:
    done = subprocess.run(
        [promtool, "test", "rules", RULE_TESTS.name],
        cwd=RULE_TESTS.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
