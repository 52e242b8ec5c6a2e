"""Rendering deploy/k8s with kubectl's built-in kustomize, and reading what it rendered."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.podman import ROOT

K8S = ROOT / "deploy" / "k8s"
# What `kubectl apply -k` users deploy: the root (the production overlay) and each overlay.
TARGETS = {
    "deploy/k8s": K8S,
    "overlays/dev": K8S / "overlays" / "dev",
    "overlays/production": K8S / "overlays" / "production",
}
Doc = dict[str, Any]


def render(directory: Path) -> list[Doc]:
    """``kubectl kustomize DIRECTORY`` (no flags), parsed."""
    done = subprocess.run(
        ["kubectl", "kustomize", str(directory)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def render_overlay(folder: Path, kustomization: Doc) -> list[Doc]:
    """Render a kustomization written into ``folder``; its paths may be relative to the repo
    (kustomize takes bases by relative path only)."""
    folder.mkdir(parents=True, exist_ok=True)

    def relative(path: str) -> str:
        return os.path.relpath(ROOT / path, folder)

    for key in ("resources", "components"):
        if key in kustomization:
            kustomization[key] = [relative(p) for p in kustomization[key]]
    (folder / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return render(folder)


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] == kind]


def pod_templates(docs: list[Doc]) -> Iterator[tuple[str, Doc]]:
    """(component, pod spec) of every Deployment and Job."""
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            template = doc["spec"]["template"]
            yield template["metadata"]["labels"]["app.kubernetes.io/component"], template["spec"]
