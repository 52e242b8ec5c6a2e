"""deploy/k8s as kustomize renders it: valid for a current Kubernetes, Pod Security
"restricted", least privilege, and consistent with the configuration and the image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from acmegate.cli.compose import SERVICE_NAMES
from acmegate.common.config import load_config
from acmegate.common.config.model import FileKey
from acmegate.common.health import DATABASE_CHECK_TIMEOUT
from tests.deploy.kustomize import (
    K8S,
    TARGETS,
    Doc,
    of_kind,
    pod_templates,
    render,
    render_overlay,
)

# The newest Kubernetes version kubernetes-validate knows.
KUBERNETES_VERSION = kubernetes_validate.latest_version()


@pytest.fixture(scope="module")
def rendered(kubectl: str) -> dict[str, list[Doc]]:
    return {name: render(path) for name, path in TARGETS.items()}


@pytest.fixture(scope="module")
def production(rendered: dict[str, list[Doc]]) -> list[Doc]:
    return rendered["deploy/k8s"]


def test_the_root_renders_the_production_overlay(rendered: dict[str, list[Doc]]) -> None:
    assert rendered["deploy/k8s"] == rendered["overlays/production"]


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_object_passes_strict_validation(rendered: dict[str, list[Doc]], target: str) -> None:
    for doc in rendered[target]:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            raise AssertionError(
                f"{target}: {doc['kind']}/{doc['metadata']['name']}: {exc}"
            ) from exc


def test_the_cert_manager_option_renders_and_validates(kubectl: str, tmp_path: Path) -> None:
    docs = render_overlay(
        tmp_path,
        {
            "resources": ["deploy/k8s/overlays/production"],
            "components": ["deploy/k8s/components/cert-manager"],
        },
    )
    (ingress,) = of_kind(docs, "Ingress")
    assert "cert-manager.io/cluster-issuer" in ingress["metadata"]["annotations"]
    kubernetes_validate.validate(ingress, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_pod_meets_the_restricted_pod_security_standard(
    rendered: dict[str, list[Doc]], target: str
) -> None:
    templates = dict(pod_templates(rendered[target]))
    assert set(templates) == {*SERVICE_NAMES, "migrate"}
    for component, spec in templates.items():
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0, component
        assert pod["seccompProfile"]["type"] == "RuntimeDefault", component
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(flag), (component, flag)
        for volume in spec.get("volumes", []):
            assert set(volume) - {"name"} <= {"configMap", "secret", "emptyDir"}, volume
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, component
            assert context["readOnlyRootFilesystem"] is True, component
            assert context["capabilities"]["drop"] == ["ALL"], component
            assert not context["capabilities"].get("add"), component
            assert not context.get("privileged"), component


def secrets_seen(spec: Doc) -> dict[str, set[str]]:
    """Secret name → the keys the pod's containers can read."""
    seen: dict[str, set[str]] = {}
    for container in spec["containers"]:
        assert "envFrom" not in container, "every secret key is named, none is spread"
        for env in container.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                seen.setdefault(ref["name"], set()).add(ref["key"])
    for volume in spec.get("volumes", []):
        if "secret" in volume:
            items = volume["secret"].get("items")
            keys = {item["key"] for item in items} if items else {"*"}
            seen.setdefault(volume["secret"]["secretName"], set()).update(keys)
    return seen


def test_each_service_sees_only_the_secrets_it_needs(production: list[Doc]) -> None:
    seen = {component: secrets_seen(spec) for component, spec in pod_templates(production)}
    assert seen == {
        "frontend": {
            "acmegate-database": {"url"},
            "acmegate-amqp": {"url"},
            "acmegate-admin": {"token"},
        },
        # No database, no CA, no admin token.
        "attestation": {"acmegate-amqp": {"url"}},
        # The CA's certificates (to check what FreeRADIUS presents), never its key.
        "policy": {
            "acmegate-database": {"url"},
            "acmegate-amqp": {"url"},
            "acmegate-radius": {"token"},
            "acmegate-ca": {"devices.pem", "root.pem"},
        },
        "signer": {"acmegate-database": {"url"}, "acmegate-amqp": {"url"}, "acmegate-ca": {"*"}},
        "migrate": {"acmegate-database": {"url"}},
    }


def test_the_signer_reads_its_key_through_fs_group(production: list[Doc]) -> None:
    spec = dict(pod_templates(production))["signer"]
    (ca,) = [v["secret"] for v in spec["volumes"] if "secret" in v]
    group = spec["securityContext"]["fsGroup"]
    # Kubernetes gives the files the group fsGroup and the mode defaultMode: readable by the
    # image's user (uid 10001, whose group is fsGroup), by no one else.
    assert group == spec["securityContext"]["runAsGroup"] == 10001
    assert ca["defaultMode"] & 0o040 and not ca["defaultMode"] & 0o007


def test_pods_run_under_a_service_account_without_a_token(production: list[Doc]) -> None:
    (account,) = of_kind(production, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    for component, spec in pod_templates(production):
        assert spec["serviceAccountName"] == account["metadata"]["name"], component
        assert spec["automountServiceAccountToken"] is False, component


def test_replicas_spread_across_nodes_and_autoscale(production: list[Doc]) -> None:
    autoscalers = {
        h["spec"]["scaleTargetRef"]["name"]: h
        for h in of_kind(production, "HorizontalPodAutoscaler")
    }
    budgets = {b["metadata"]["name"] for b in of_kind(production, "PodDisruptionBudget")}
    for deployment in of_kind(production, "Deployment"):
        name = deployment["metadata"]["name"]
        spec = deployment["spec"]["template"]["spec"]
        keys = {c["topologyKey"] for c in spec["topologySpreadConstraints"]}
        assert "kubernetes.io/hostname" in keys, name
        metrics = autoscalers[name]["spec"]["metrics"]
        assert metrics[0]["resource"]["name"] == "cpu", name
        assert autoscalers[name]["spec"]["minReplicas"] >= 2, name
        assert name in budgets


def test_probes_wait_longer_than_the_checks_they_run(production: list[Doc]) -> None:
    for component, spec in pod_templates(production):
        if component == "migrate":
            continue
        (container,) = spec["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        env = {e["name"]: e.get("value") for e in container["env"]}
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            http = container[probe]["httpGet"]
            assert ports[http["port"]] == int(env["ACMEGATE_HEALTH_PORT"]), (component, probe)
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["readinessProbe"]["timeoutSeconds"] > DATABASE_CHECK_TIMEOUT


def test_only_the_frontend_takes_traffic_from_outside(production: list[Doc]) -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in of_kind(production, "NetworkPolicy")}
    deny = policies.pop("acmegate-default-deny")
    assert deny["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "acmegate"}
    assert deny["policyTypes"] == ["Ingress"] and "ingress" not in deny
    open_ports = {
        (name, port["port"])
        for name, spec in policies.items()
        for rule in spec.get("ingress", [])
        if "from" not in rule
        for port in rule["ports"]
    }
    assert open_ports == {("acmegate-frontend", "acme")}
    admin = [
        r for r in policies["acmegate-frontend"]["ingress"] if r["ports"][0]["port"] == "admin"
    ]
    assert admin[0]["from"] == [{"podSelector": {"matchLabels": {"acmegate.io/access": "admin"}}}]
    radius = policies["acmegate-policy"]["ingress"][0]
    assert radius["from"][0]["podSelector"]["matchLabels"] == {"acmegate.io/access": "radius"}


def test_the_ingress_serves_the_acme_directory_over_tls(production: list[Doc]) -> None:
    (ingress,) = of_kind(production, "Ingress")
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] in ingress["spec"]["tls"][0]["hosts"]
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/acme" and path["backend"]["service"]["name"] == "acmegate-frontend"
    config = yaml.safe_load(of_kind(production, "ConfigMap")[0]["data"]["acmegate.yaml"])
    assert config["server"]["external_url"] == f"https://{rule['host']}"


def test_the_image_tag_comes_from_images_and_names_the_migrate_job(
    production: list[Doc], kubectl: str, tmp_path: Path
) -> None:
    images = {c["image"] for _, spec in pod_templates(production) for c in spec["containers"]}
    assert images == {"registry.example.com/acmegate:0.1.0"}
    (job,) = of_kind(production, "Job")
    assert job["metadata"]["name"] == "acmegate-migrate-0.1.0"
    # An upgrade (a new tag in `images:`) brings a new Job rather than a changed one, whose
    # pod template Kubernetes refuses to change ("field is immutable").
    kustomization = yaml.safe_load((K8S / "overlays/production/kustomization.yaml").read_text())
    kustomization["resources"] = ["deploy/k8s/base"]
    kustomization["images"][0]["newTag"] = "0.2.0"
    upgraded = render_overlay(tmp_path, kustomization)
    (new_job,) = of_kind(upgraded, "Job")
    assert new_job["metadata"]["name"] == "acmegate-migrate-0.2.0"
    # The Job mounts no configuration: a configuration change leaves it as it is.
    assert "volumes" not in new_job["spec"]["template"]["spec"]


def test_the_configuration_is_valid_and_matches_the_mounts(
    production: list[Doc], tmp_path: Path
) -> None:
    (config_map,) = of_kind(production, "ConfigMap")
    for name, text in config_map["data"].items():
        (tmp_path / name).write_text(text)
    config = load_config(tmp_path / "acmegate.yaml")
    assert all(not provider.roots for provider in config.attestation_providers)
    templates = dict(pod_templates(production))
    for component in SERVICE_NAMES:
        (container,) = templates[component]["containers"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        config_path = Path(container["args"][container["args"].index("--config") + 1])
        assert mounts[str(config_path.parent)] == "config", component
    signer_mounts = {m["mountPath"] for m in templates["signer"]["containers"][0]["volumeMounts"]}
    for ca in config.certificate_authorities:
        assert str(Path(ca.certificate).parent) in signer_mounts
        assert isinstance(ca.key, FileKey) and str(Path(ca.key.path).parent) in signer_mounts


def test_the_dev_overlay_runs_one_replica_without_autoscalers(
    rendered: dict[str, list[Doc]],
) -> None:
    dev = rendered["overlays/dev"]
    assert not of_kind(dev, "HorizontalPodAutoscaler") and not of_kind(dev, "PodDisruptionBudget")
    assert {d["spec"]["replicas"] for d in of_kind(dev, "Deployment")} == {1}
    (namespace,) = of_kind(dev, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_every_manifest_file_is_used(rendered: dict[str, list[Doc]]) -> None:
    for base_file in (K8S / "base").glob("*.yaml"):
        if base_file.name in ("kustomization.yaml", "acmegate.yaml", "inventory.yaml"):
            continue
        kustomization: dict[str, Any] = yaml.safe_load(
            (K8S / "base/kustomization.yaml").read_text()
        )
        assert base_file.name in kustomization["resources"], base_file.name
