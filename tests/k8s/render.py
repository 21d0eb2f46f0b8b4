"""Rendering the overlays with the real kustomize, and reading what they hold."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

OVERLAYS = ("base", "overlays/dev", "overlays/prod")
WORKLOADS = ("Deployment", "StatefulSet", "Job")


@dataclass(frozen=True)
class Renderer:
    kustomize: Path
    root: Path
    _cache: dict[str, list[dict[str, Any]]] = field(default_factory=dict, compare=False)

    def build(self, overlay: str) -> list[dict[str, Any]]:
        if overlay not in self._cache:
            result = subprocess.run(
                [self.kustomize, "build", self.root / overlay], capture_output=True, text=True, timeout=120
            )
            assert result.returncode == 0, f"kustomize build {overlay}: {result.stderr}"
            self._cache[overlay] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
        return self._cache[overlay]


def pod_specs(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every pod this repository defines: workloads' templates and the Flink jobs' pod template
    (the operators' own pods, Kafka's and PostgreSQL's, are theirs to secure)."""
    for obj in objects:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] in WORKLOADS:
            yield name, obj["spec"]["template"]["spec"]
        elif obj["kind"] == "FlinkDeployment":
            yield name, obj["spec"]["podTemplate"]["spec"]


def pod_labels(obj: dict[str, Any]) -> dict[str, str]:
    if obj["kind"] == "FlinkDeployment":
        return obj["spec"]["podTemplate"]["metadata"]["labels"]
    return obj["spec"]["template"]["metadata"]["labels"]


def named(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


@cache
def crd_schemas(crds: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) to the openAPIV3Schema of every vendored CRD version."""
    schemas = {}
    for path in sorted(crds.glob("*/*.y*ml")):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
            schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas
