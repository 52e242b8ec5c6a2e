"""The rendered dev overlay started with `podman kube play`: every container passes its startup
and readiness probes, against the machine's PostgreSQL and RabbitMQ.

The machine's Podman (4.3) plays Deployments but not everything a kubelet does, so the rendered
objects are adapted, each adaptation below being what the kubelet would have done itself:

- the migrate Job's pod template runs as a Pod first (kube play knows no Jobs);
- Secrets become Podman secrets (what `secretKeyRef` reads), and each Secret volume a folder
  written the way the kubelet projects it: the listed ``items`` only, mode ``defaultMode``,
  group ``fsGroup``, which the containers get as a supplementary group, as under Kubernetes;
- pods use the host's network (there is no pod network here), so each listener gets a free
  port and the pods publish none;
- the test runs each container's startup and readiness probes itself, as the kubelet would:
  Podman only turns liveness probes into health checks, and runs those from systemd timers.

Every name gets a per-run suffix: Podman's pods, volumes and secrets are machine-wide.
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from acmegate.cli.compose import SERVICE_NAMES
from acmegate.signer.setup.create import init_ca
from tests.deploy.kustomize import TARGETS, Doc, of_kind, render
from tests.deploy.podman import RUN_ID, http_get, podman
from tests.support.gateway import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SUFFIX = f"-t{RUN_ID}"
PASSPHRASE = "kube play passphrase"


@dataclass
class Played:
    """What was played, and what the test needs to reach it."""

    folder: Path
    secrets: dict[str, dict[str, str]]
    health: dict[str, Doc] = field(default_factory=dict)  # component → container (probes)
    ports: dict[str, int] = field(default_factory=dict)  # listener → port
    pods: list[str] = field(default_factory=list)
    podman_secrets: list[str] = field(default_factory=list)


def make_secrets(folder: Path, database_url: str, amqp_url: str) -> dict[str, dict[str, str]]:
    """The Secrets docs/deploy.md tells an operator to create, with this test's values."""
    ca = folder / "ca"
    init_ca(
        ca, name="devices", common_name="kube play CA", subject=[("O", "acmegate tests")],
        key_type="ec-p256", hash="sha256", passphrase=PASSPHRASE,
    )  # fmt: skip
    return {
        "acmegate-database": {"url": database_url},
        "acmegate-amqp": {"url": amqp_url},
        "acmegate-admin": {"token": "kube-play-admin-token"},
        "acmegate-radius": {"token": "kube-play-radius-token"},
        "acmegate-ca": {
            "devices.pem": (ca / "devices.pem").read_text(),
            "root.pem": (ca / "root.pem").read_text(),
            "devices.key": (ca / "devices.key").read_text(),
            "passphrase": PASSPHRASE,
        },
    }


def adapt_config(config_map: Doc, ports: dict[str, int], namespace: str) -> None:
    config = yaml.safe_load(config_map["data"]["acmegate.yaml"])
    config["server"].update(host="127.0.0.1", port=ports["acme"])
    config["server"]["external_url"] = f"http://127.0.0.1:{ports['acme']}"
    config["admin"].update(host="127.0.0.1", port=ports["admin"])
    config["pki"].update(host="127.0.0.1", port=ports["pki"])
    config["pki"]["base_url"] = f"http://127.0.0.1:{ports['pki']}"
    config["radius"].update(host="127.0.0.1", port=ports["radius"])
    config["bus"]["namespace"] = namespace
    config_map["data"]["acmegate.yaml"] = yaml.safe_dump(config)
    config_map["metadata"]["name"] += SUFFIX


def project_secret_volume(volume: Doc, pod: Doc, played: Played, owner: str) -> None:
    """Turn a Secret volume into the folder the kubelet would write for it."""
    source = volume.pop("secret")
    data = played.secrets[source["secretName"]]
    items = source.get("items") or [{"key": key, "path": key} for key in data]
    mode = source.get("defaultMode", 0o644)
    group = pod["securityContext"].get("fsGroup", 0)
    target = played.folder / "volumes" / owner / volume["name"]
    target.mkdir(parents=True)
    for item in items:
        path = target / item["path"]
        path.write_text(data[item["key"]])
        path.chmod(mode)
        try:
            os.chown(path, 0, group)
        except PermissionError:
            pytest.skip("projecting Secret volumes with their group needs root")
    volume["hostPath"] = {"path": str(target), "type": "Directory"}


def adapt_pod(spec: Doc, component: str, played: Played, image: str, config_map: str) -> None:
    spec["hostNetwork"] = True
    fs_group = spec["securityContext"].get("fsGroup")
    if fs_group is not None:
        spec["securityContext"]["supplementalGroups"] = [fs_group]
    for volume in spec.get("volumes", []):
        if "configMap" in volume:
            volume["configMap"]["name"] = config_map
        if "secret" in volume:
            project_secret_volume(
                volume, {"securityContext": spec["securityContext"]}, played, component
            )
    for container in spec["containers"]:
        container["image"] = image
        container["imagePullPolicy"] = "Never"
        for env in container.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                ref["name"] += SUFFIX
            if env["name"] == "ACMEGATE_HEALTH_PORT":
                played.ports[f"health-{component}"] = free_port()
                env["value"] = str(played.ports[f"health-{component}"])
        if "readinessProbe" in container:
            played.health[component] = json.loads(json.dumps(container))
        for key in ("ports", "startupProbe", "livenessProbe", "readinessProbe"):
            container.pop(key, None)


def create_podman_secrets(played: Played) -> None:
    # What secretKeyRef reads in Podman 4.3: a JSON object of base64 values.
    for name, data in played.secrets.items():
        encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
        podman("secret", "create", name + SUFFIX, "-", stdin=json.dumps(encoded))
        played.podman_secrets.append(name + SUFFIX)


def kube_play(played: Played, docs: list[Doc], name: str) -> None:
    path = played.folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    done = podman("kube", "play", str(path), check=False, timeout=180)
    played.pods += [f"{d['metadata']['name']}-pod-0" for d in docs if d["kind"] == "Deployment"]
    played.pods += [d["metadata"]["name"] for d in docs if d["kind"] == "Pod"]
    assert done.returncode == 0, done.stderr[-3000:]


def probe(container: Doc, kind: str, port: int) -> tuple[bool, str]:
    """Run a container's probe as the kubelet does: period, timeout, failure threshold."""
    spec = container[kind]
    path = spec["httpGet"]["path"]
    attempts = spec.get("failureThreshold", 3)
    last = ""
    for _ in range(attempts):
        status, body = http_get(
            f"http://127.0.0.1:{port}{path}", timeout=spec.get("timeoutSeconds", 1)
        )
        if 200 <= status < 400:
            return True, body
        last = f"{status} {body}"
        time.sleep(spec.get("periodSeconds", 10))
    return False, last


def container_logs(pod: str) -> str:
    listed = podman("ps", "-a", "--filter", f"pod={pod}", "--format", "{{.Names}}", check=False)
    names = [n for n in listed.stdout.split() if not n.endswith("-infra")]
    return "\n".join(podman("logs", n, check=False).stderr[-1500:] for n in names)


@pytest.fixture
def played(
    image: str,
    kubectl: str,
    tmp_path: Path,
    database_url: str,
    amqp_server_url: str,
    bus_namespace: str,
) -> Iterator[Played]:
    docs = render(TARGETS["overlays/dev"])
    played = Played(tmp_path, make_secrets(tmp_path, database_url, amqp_server_url))
    played.ports.update({name: free_port() for name in ("acme", "admin", "pki", "radius")})
    (config_map,) = of_kind(docs, "ConfigMap")
    adapt_config(config_map, played.ports, bus_namespace)
    try:
        create_podman_secrets(played)
        (job,) = of_kind(docs, "Job")
        template = job["spec"]["template"]
        adapt_pod(template["spec"], "migrate", played, image, config_map["metadata"]["name"])
        migrate = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": job["metadata"]["name"] + SUFFIX, **template["metadata"]},
            "spec": template["spec"],
        }
        migrate["metadata"]["name"] = job["metadata"]["name"] + SUFFIX
        kube_play(played, [migrate], "migrate")
        migrate_container = f"{migrate['metadata']['name']}-migrate"
        waited = podman("wait", migrate_container, timeout=120)
        assert waited.stdout.strip() == "0", podman("logs", migrate_container, check=False).stderr
        deployments = of_kind(docs, "Deployment")
        for deployment in deployments:
            deployment["metadata"]["name"] += SUFFIX
            component = deployment["spec"]["template"]["metadata"]["labels"][
                "app.kubernetes.io/component"
            ]
            adapt_pod(
                deployment["spec"]["template"]["spec"],
                component,
                played,
                image,
                config_map["metadata"]["name"],
            )
        kube_play(played, [config_map, *deployments], "deployments")
        yield played
    finally:
        if played.pods:
            podman("pod", "rm", "--force", "--time", "3", *played.pods, check=False, timeout=120)
        if played.podman_secrets:
            podman("secret", "rm", *played.podman_secrets, check=False)
        podman("volume", "rm", "--force", config_map["metadata"]["name"], check=False)


def test_every_played_container_passes_its_startup_and_readiness_probes(played: Played) -> None:
    assert set(played.health) == set(SERVICE_NAMES)
    for component, container in played.health.items():
        port = played.ports[f"health-{component}"]
        for kind in ("startupProbe", "readinessProbe"):
            ok, detail = probe(container, kind, port)
            pod = f"acmegate-{component}{SUFFIX}-pod-0"
            assert ok, f"{component} failed its {kind}: {detail}\n{container_logs(pod)}"


def test_the_played_services_use_the_secrets_they_were_given(played: Played) -> None:
    for component, container in played.health.items():
        ok, detail = probe(container, "readinessProbe", played.ports[f"health-{component}"])
        assert ok, f"{component}: {detail}"
    admin = f"http://127.0.0.1:{played.ports['admin']}/api/v1/certificate-authorities"
    token = played.secrets["acmegate-admin"]["token"]
    assert http_get(admin)[0] == 401
    status, body = http_get(admin, {"Authorization": f"Bearer {token}"})
    assert status == 200 and "devices" in body, body
    # The signer read its key (through fsGroup): its CRL is signed by the CA.
    url = f"http://127.0.0.1:{played.ports['pki']}/crl/devices.crl"
    with urllib.request.urlopen(url, timeout=10) as response:
        crl = x509.load_der_x509_crl(response.read())
    ca = x509.load_pem_x509_certificate(played.secrets["acmegate-ca"]["devices.pem"].encode())
    assert crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
    radius = http_get(f"http://127.0.0.1:{played.ports['radius']}/radius/authorize")
    assert radius[0] in (401, 405), radius
