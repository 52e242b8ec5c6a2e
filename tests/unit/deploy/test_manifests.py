"""The deployment files stay consistent with the services and the configuration schema."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from acmegate.cli.compose import SERVICE_NAMES
from acmegate.common.config import load_config

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"


def documents(path: Path) -> list[dict[str, object]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_each_service_has_a_probed_deployment_an_autoscaler_and_a_disruption_budget(
    service: str,
) -> None:
    kinds = {doc["kind"]: doc for doc in documents(K8S / f"{service}.yaml")}
    assert set(kinds) == {"Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    container = kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]
    assert container["args"][:2] == ["run", service]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    kustomization = documents(K8S / "kustomization.yaml")[0]
    assert f"{service}.yaml" in kustomization["resources"]  # type: ignore[operator]


def test_compose_runs_every_service_with_the_migrations_first() -> None:
    compose = documents(ROOT / "docker-compose.yml")[0]
    services = compose["services"]  # type: ignore[index]
    for service in SERVICE_NAMES:
        assert services[service]["command"][:2] == ["run", service]
        assert "migrate" in services[service]["depends_on"]


@pytest.mark.parametrize("name", ["dev.yaml", "production.yaml"])
def test_the_example_configurations_are_valid(name: str) -> None:
    config = load_config(ROOT / "examples" / name)
    assert config.enrollment_policies


def test_production_trusts_only_apples_root() -> None:
    config = load_config(ROOT / "examples" / "production.yaml")
    assert all(not provider.roots for provider in config.attestation_providers)
    assert not config.dev.bootstrap
