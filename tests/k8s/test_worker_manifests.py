"""The per-provider worker manifests: what each provider's metadata becomes, and that the
committed files under k8s/workers are exactly what `gpubroker k8s workers` renders."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpubroker.core.plugins import RegisteredProvider, load_providers
from gpubroker.core.provider import ProviderInfo, WorkerResources
from gpubroker.workers import manifests

REPO = Path(__file__).resolve().parents[2]
WORKERS = REPO / "k8s" / "workers"
BIN = Path(sys.executable).parent / "gpubroker"


def objects(text: str) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(text)}


def info(**overrides: Any) -> ProviderInfo:
    return ProviderInfo(name="acme_cloud", display_name="Acme", api_base_url="https://api.acme.example", **overrides)


def provider_named(name: str) -> RegisteredProvider:
    vastai = load_providers(allow=["vastai"]).get("vastai")
    adapter = type("Adapter", (vastai.adapter,), {"info": vastai.info.model_copy(update={"name": name})})
    return dataclasses.replace(vastai, adapter=adapter)


def test_an_unsharded_provider_is_one_deployment_that_never_runs_two_pollers() -> None:
    docs = objects(manifests.render_worker(info(poll_interval_s=300, concurrency_limit=2, rate_limit_per_minute=90)))
    assert set(docs) == {"ServiceAccount", "Deployment", "PodDisruptionBudget", "NetworkPolicy"}
    deployment = docs["Deployment"]
    assert deployment["metadata"]["name"] == "worker-acme-cloud"
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert deployment["metadata"]["annotations"] == {
        "gpubroker.io/poll-interval-s": "300",
        "gpubroker.io/concurrency-limit": "2",
        "gpubroker.io/rate-limit-per-minute": "90",
        "gpubroker.io/shards": "1",
    }
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:4] == ["gpubroker", "worker", "--provider", "acme_cloud"]
    check = ["gpubroker", "worker", "--provider", "acme_cloud", "--check"]
    assert container["livenessProbe"]["exec"]["command"] == check
    assert "GPUBROKER_SHARD" not in {e["name"] for e in container["env"]}


def test_a_sharded_provider_is_a_statefulset_whose_shard_is_the_pod_ordinal() -> None:
    docs = objects(manifests.render_worker(info(shards=3)))
    statefulset = docs["StatefulSet"]
    assert statefulset["spec"]["replicas"] == 3
    assert statefulset["spec"]["serviceName"] == docs["Service"]["metadata"]["name"] == "worker-acme-cloud"
    assert docs["Service"]["spec"]["clusterIP"] == "None"
    env = {e["name"]: e for e in statefulset["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["GPUBROKER_SHARD_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.labels['apps.kubernetes.io/pod-index']"
    )
    # The probe is not run by a shell: it reads the shard from the environment, like the worker.
    assert env["GPUBROKER_SHARD"]["value"] == "$(GPUBROKER_SHARD_INDEX)/3"


def test_resources_vault_role_and_network_come_from_the_metadata() -> None:
    docs = objects(manifests.render_worker(info(resources=WorkerResources(memory_request="1Gi", memory_limit="2Gi"))))
    pod = docs["Deployment"]["spec"]["template"]
    assert pod["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "50m", "memory": "1Gi"},
        "limits": {"cpu": "500m", "memory": "2Gi"},
    }
    annotations = pod["metadata"]["annotations"]
    assert annotations["openbao.openbao.org/role"] == "gpubroker-worker-acme-cloud"
    assert annotations["gpubroker.io/credentials"] == "secret/gpubroker/providers/acme_cloud"
    egress = docs["NetworkPolicy"]["spec"]["egress"]
    assert [rule["ports"][0]["port"] for rule in egress] == [53, 9092, 8200, 443]
    internet = egress[-1]["to"][0]["ipBlock"]
    assert internet["cidr"] == "0.0.0.0/0" and "10.0.0.0/8" in internet["except"]


@pytest.mark.parametrize(
    ("resources", "problem"),
    [
        ({"cpu_request": "lots"}, "cpu_request"),
        ({"memory_limit": "1G"}, "memory_limit"),
        ({"memory_request": "2Gi", "memory_limit": "1Gi"}, "memory_request 2Gi is more than memory_limit 1Gi"),
        ({"cpu_request": "2", "cpu_limit": "500m"}, "cpu_request 2 is more than cpu_limit 500m"),
    ],
)
def test_bad_resources_are_refused_with_the_field_named(resources: dict[str, str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        WorkerResources(**resources)


def test_the_committed_worker_manifests_are_what_the_installed_plugins_render() -> None:
    rendered = manifests.render_workers(load_providers())
    assert manifests.drifted(rendered, WORKERS) == [], "run 'gpubroker k8s workers' and commit k8s/workers"
    assert len(rendered) - 1 == len(list(load_providers()))


def test_a_new_plugin_without_its_worker_is_drift() -> None:
    providers = [*load_providers(), provider_named("acme")]
    assert manifests.drifted(manifests.render_workers(providers), WORKERS) == ["kustomization.yaml", "worker-acme.yaml"]


def test_the_command_writes_the_workers_and_check_names_what_differs(tmp_path: Path) -> None:
    target = tmp_path / "workers"
    check = subprocess.run([BIN, "k8s", "workers", "--check", "--dir", str(target)], capture_output=True, text=True)
    assert check.returncode == 1
    assert f"{target}/worker-vastai.yaml: differs from the installed plugins' metadata" in check.stderr
    (target).mkdir()
    (target / "worker-gone.yaml").write_text("kind: Deployment\n")
    written = subprocess.run([BIN, "k8s", "workers", "--dir", str(target)], capture_output=True, text=True)
    assert written.returncode == 0, written.stderr
    assert not (target / "worker-gone.yaml").exists()
    assert subprocess.run([BIN, "k8s", "workers", "--check", "--dir", str(target)]).returncode == 0
