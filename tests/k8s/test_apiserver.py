"""Every overlay applied to a real kube-apiserver (with etcd) as a server-side dry-run, after the
operators' CRDs are installed: defaulting, admission (Pod Security included) and both the
Kubernetes and the CRD schemas run for real, with unknown fields refused."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.k8s.kube import KubeAPI
from tests.k8s.render import OVERLAYS, Renderer, named

# The first of these waits for the tools to be built (scripts/test builds them meanwhile).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

CRDS = Path(__file__).resolve().parents[2] / "k8s" / "crds"


@pytest.fixture(scope="module")
def cluster(kube: KubeAPI) -> KubeAPI:
    """The API server with the vendored CRDs installed (for real: a dry-run cannot serve a kind)."""
    for path in sorted(CRDS.glob("*/*.y*ml")):
        crd = yaml.safe_load(path.read_text())
        answer = kube.apply(crd, dry_run=False)
        assert answer.status in (200, 201), f"{path.name}: {answer.message}"
        kube.wait_established(crd["metadata"]["name"])
    return kube


STORED = ("Namespace", "ServiceAccount")


def apply_overlay(cluster: KubeAPI, objects: list[dict[str, Any]]) -> dict[str, str]:
    """Namespaces and service accounts are created (a namespaced object's dry-run needs its
    namespace, a pod its service account); everything else is a dry-run. Returns what was
    refused, and why."""
    refused = {}
    for obj in sorted(objects, key=lambda o: o["kind"] not in STORED):
        answer = cluster.apply(obj, dry_run=obj["kind"] not in STORED)
        if answer.status not in (200, 201):
            refused[f"{obj['kind']}/{obj['metadata']['name']}"] = answer.message
    return refused


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_of_the_overlay_is_accepted(cluster: KubeAPI, renderer: Renderer, overlay: str) -> None:
    objects = renderer.build(overlay)
    assert apply_overlay(cluster, objects) == {}


def test_the_dry_run_refuses_what_a_cluster_would(cluster: KubeAPI, renderer: Renderer) -> None:
    """The same path refuses bad objects: the acceptance above means something."""
    objects = renderer.build("overlays/prod")
    gateway = copy.deepcopy(named(objects, "Deployment", "gateway"))
    gateway["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] = "lots"
    topic = copy.deepcopy(named(objects, "KafkaTopic", "gpubroker.offers"))
    topic["spec"]["partitions"] = "twelve"
    policy = copy.deepcopy(named(objects, "NetworkPolicy", "default-deny"))
    policy["spec"]["podSelectr"] = {}
    refused = apply_overlay(cluster, [gateway, topic, policy])
    assert "quantities must match the regular expression" in refused["Deployment/gateway"]
    assert "spec.partitions" in refused["KafkaTopic/gpubroker.offers"]
    assert ".spec.podSelectr: field not declared in schema" in refused["NetworkPolicy/default-deny"]


def pod_from(obj: dict[str, Any]) -> dict[str, Any]:
    template = obj["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{obj['metadata']['name']}-pod", "namespace": obj["metadata"]["namespace"]},
        "spec": copy.deepcopy(template["spec"]),
    }


def test_every_pod_the_workloads_would_create_meets_the_restricted_pod_security_standard(
    cluster: KubeAPI, renderer: Renderer
) -> None:
    """Pod Security admission only warns about a workload; it refuses the pods. The namespace
    enforces "restricted": each workload's pod, dry-run as a Pod, must be admitted, and the same
    pod running as root must not."""
    objects = renderer.build("overlays/prod")
    assert apply_overlay(cluster, [o for o in objects if o["kind"] in STORED]) == {}
    pods = [pod_from(o) for o in objects if o["kind"] in ("Deployment", "StatefulSet", "Job")]
    assert apply_overlay(cluster, pods) == {}
    root = pod_from(named(objects, "Deployment", "gateway"))
    root["spec"]["securityContext"] |= {"runAsNonRoot": False, "runAsUser": 0}
    assert "violates PodSecurity" in apply_overlay(cluster, [root])["Pod/gateway-pod"]
