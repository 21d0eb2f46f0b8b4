"""Every overlay, rendered with the real kustomize: the security defaults of every pod, the
network policies, the secrets' path, the sizes the SRS asks for, custom resources against the
operators' CRD schemas, and the monitoring against the metrics the product exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from gpubroker.core import events, rental_messages
from gpubroker.core.plugins import load_providers
from tests.k8s.render import OVERLAYS, WORKLOADS, Renderer, crd_schemas, named, pod_labels, pod_specs

# The first of these waits for the tools to be built (scripts/test builds them meanwhile).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "k8s" / "crds"
BUILTIN_GROUPS = (
    "v1",
    "apps/",
    "batch/",
    "policy/",
    "autoscaling/",
    "networking.k8s.io/",
    "rbac.authorization.k8s.io/",
)
SECRET_NAME = re.compile(r"(SECRET_KEY|PASSWORD|TOKEN|_URL)$")
CREDENTIALS_IN_URL = re.compile(r"://[^/\s]*:[^/\s]*@")


@pytest.fixture(params=OVERLAYS)
def rendered(request: pytest.FixtureRequest, renderer: Renderer) -> list[dict[str, Any]]:
    return renderer.build(request.param)


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def test_every_container_runs_unprivileged_read_only_and_bounded(rendered: list[dict[str, Any]]) -> None:
    problems = []
    for name, spec in pod_specs(rendered):
        pod_security = spec.get("securityContext", {})
        if pod_security.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{name}: no RuntimeDefault seccomp profile")
        for container in containers(spec):
            where = f"{name} container {container['name']}"
            security = container.get("securityContext", {})
            if not (security.get("runAsNonRoot") or pod_security.get("runAsNonRoot")):
                problems.append(f"{where}: may run as root")
            if security.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: privilege escalation allowed")
            if security.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: writable root filesystem")
            if "ALL" not in security.get("capabilities", {}).get("drop", []):
                problems.append(f"{where}: capabilities not all dropped")
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in resources.get(bound, {}):
                        problems.append(f"{where}: no {resource} {bound[:-1]}")
            image = container.get("image", "")
            if image.endswith(":latest"):
                problems.append(f"{where}: image {image} is not pinned")
    assert problems == []


def test_no_secret_is_a_configmap_entry_an_env_literal_or_a_secret_object(rendered: list[dict[str, Any]]) -> None:
    problems = [f"Secret/{o['metadata']['name']}" for o in rendered if o["kind"] == "Secret"]
    for config in (o for o in rendered if o["kind"] == "ConfigMap"):
        for key, value in config.get("data", {}).items():
            if SECRET_NAME.search(key) or CREDENTIALS_IN_URL.search(value):
                problems.append(f"ConfigMap/{config['metadata']['name']}: {key}")
    for name, spec in pod_specs(rendered):
        for container in containers(spec):
            for variable in container.get("env", []):
                if "value" in variable and SECRET_NAME.search(variable["name"]):
                    problems.append(f"{name}: env {variable['name']} is a literal")
    assert problems == []


def test_secrets_reach_the_product_through_the_openbao_agent(rendered: list[dict[str, Any]]) -> None:
    for obj in rendered:
        product = pod_labels(obj).get("app.kubernetes.io/name") == "gpubroker" if obj["kind"] in WORKLOADS else False
        if product:
            annotations = obj["spec"]["template"]["metadata"]["annotations"]
            assert annotations["openbao.openbao.org/agent-inject"] == "true", obj["metadata"]["name"]
            assert annotations["openbao.openbao.org/role"].startswith("gpubroker-")
            env = {e["name"]: e.get("value") for e in obj["spec"]["template"]["spec"]["containers"][0]["env"]}
            assert env["GPUBROKER_SECRETS_DIR"] == "/openbao/secrets"


def test_the_namespace_denies_by_default_and_every_pod_has_its_own_policy(rendered: list[dict[str, Any]]) -> None:
    policies = [o for o in rendered if o["kind"] == "NetworkPolicy"]
    deny = named(rendered, "NetworkPolicy", "default-deny")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    selectors = [p["spec"]["podSelector"].get("matchLabels", {}) for p in policies if p is not deny]
    for obj in rendered:
        if obj["kind"] in ("Deployment", "StatefulSet", "Job", "FlinkDeployment"):
            labels = pod_labels(obj)
            matching = [s for s in selectors if s and all(labels.get(k) == v for k, v in s.items())]
            assert matching, f"{obj['kind']}/{obj['metadata']['name']}: no network policy selects its pods"


def test_one_worker_per_installed_provider_with_its_probes_and_budget(rendered: list[dict[str, Any]]) -> None:
    workers = {
        o["spec"]["template"]["metadata"]["labels"]["gpubroker.io/provider"]: o
        for o in rendered
        if o["kind"] in ("Deployment", "StatefulSet") and o["metadata"]["name"].startswith("worker-")
    }
    assert sorted(workers) == sorted(p.info.name.replace("_", "-") for p in load_providers())
    budgets = {o["metadata"]["name"] for o in rendered if o["kind"] == "PodDisruptionBudget"}
    for worker in workers.values():
        container = worker["spec"]["template"]["spec"]["containers"][0]
        assert container["livenessProbe"]["exec"]["command"][-1] == "--check"
        assert worker["metadata"]["name"] in budgets


def test_the_gateway_is_probed_drained_budgeted_and_migrated_first(rendered: list[dict[str, Any]]) -> None:
    gateway = named(rendered, "Deployment", "gateway")["spec"]["template"]["spec"]
    container = gateway["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["lifecycle"]["preStop"]["sleep"]["seconds"] > 0
    assert gateway["terminationGracePeriodSeconds"] > container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert gateway["initContainers"][0]["command"] == ["gpubroker", "migrate", "--check"]
    assert named(rendered, "Job", "migrate")["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "gpubroker",
        "migrate",
    ]
    named(rendered, "PodDisruptionBudget", "gateway")
    annotations = named(rendered, "Ingress", "gateway")["metadata"]["annotations"]
    for timeout in ("proxy-read-timeout", "proxy-send-timeout"):  # SSE and WebSocket stay open
        assert int(annotations[f"nginx.ingress.kubernetes.io/{timeout}"]) >= 3600
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"


def test_prod_scales_the_gateway_from_10_to_1000_and_pins_every_image(renderer: Renderer) -> None:
    prod = renderer.build("overlays/prod")
    hpa = named(prod, "HorizontalPodAutoscaler", "gateway")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (10, 1000)
    images = [c["image"] for _, spec in pod_specs(prod) for c in containers(spec) if "image" in c]
    images += [o["spec"]["image"] for o in prod if o["kind"] == "FlinkDeployment"]  # its containers' image
    for image in images:  # a registry, a repository and a release tag
        assert re.match(r"^[a-z0-9.-]+\.[a-z]+/.+:[0-9][\w.-]*$", image), image
    assert named(prod, "KafkaNodePool", "dual")["spec"]["replicas"] == 3
    assert named(prod, "Cluster", "gpubroker-db")["spec"]["instances"] == 3


def test_dev_runs_one_of_everything_without_autoscaling(renderer: Renderer) -> None:
    dev = renderer.build("overlays/dev")
    assert not [o for o in dev if o["kind"] == "HorizontalPodAutoscaler"]
    assert named(dev, "Deployment", "gateway")["spec"]["replicas"] == 1
    assert named(dev, "KafkaNodePool", "dual")["spec"]["replicas"] == 1
    assert {o["spec"]["replicas"] for o in dev if o["kind"] == "KafkaTopic"} == {1}


def test_a_kafka_topic_for_every_topic_and_dead_letter_topic_of_the_product(renderer: Renderer) -> None:
    topics = {o["spec"]["topicName"]: o["spec"] for o in renderer.build("base") if o["kind"] == "KafkaTopic"}
    expected = {*events.TOPICS, *(events.dead_letter_topic(t) for t in events.TOPICS), *rental_messages.TOPICS}
    assert set(topics) == expected
    assert topics[events.OFFERS]["config"]["cleanup.policy"] == "compact"
    assert {t: s["partitions"] for t, s in topics.items() if t in events.TOPICS} == {  # the SRS's figures
        events.OFFERS: 12,
        events.PRICE_UPDATES: 12,
        events.PROVIDER_EVENTS: 6,
        events.WEBHOOKS: 6,
        events.PRICE_ALERTS: 6,
        events.PRICE_AGGREGATES: 6,
    }
    assert {(s["replicas"], s["config"]["min.insync.replicas"]) for s in topics.values()} == {(3, 2)}


def test_every_object_is_a_builtin_kind_or_a_custom_resource_valid_against_its_crd(
    rendered: list[dict[str, Any]],
) -> None:
    schemas = crd_schemas(CRDS)
    for obj in rendered:
        key = (obj["apiVersion"], obj["kind"])
        if key in schemas:
            errors = sorted(jsonschema.Draft7Validator(schemas[key]).iter_errors(obj), key=str)
            assert not errors, f"{obj['kind']}/{obj['metadata']['name']}: {errors[0].message} at {list(errors[0].path)}"
        else:
            assert obj["apiVersion"].startswith(BUILTIN_GROUPS), f"{key}: no CRD vendored under k8s/crds"


def exported_metric_names() -> set[str]:
    from prometheus_client import REGISTRY

    import gpubroker.gateway.middleware
    import gpubroker.workers.metrics

    assert gpubroker.gateway.middleware.LATENCY and gpubroker.workers.metrics.POLLS  # registered on import

    suffixes = ("", "_total", "_bucket", "_count", "_sum", "_created")
    return {family.name + suffix for family in REGISTRY.collect() for suffix in suffixes}


def test_alerts_and_dashboard_query_only_metrics_the_product_exports(renderer: Renderer) -> None:
    base = renderer.build("base")
    expressions = [
        rule["expr"]
        for group in named(base, "PrometheusRule", "gpubroker")["spec"]["groups"]
        for rule in group["rules"]
    ]
    dashboard = json.loads(next(iter(named_dashboard(base)["data"].values())))
    expressions += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    referenced = {name for expr in expressions for name in re.findall(r"\bgpubroker_\w+", expr)}
    assert referenced and referenced <= exported_metric_names()
    groups = named(base, "PrometheusRule", "gpubroker")["spec"]["groups"]
    alerts = {rule["alert"] for group in groups for rule in group["rules"]}
    assert {"ProviderDown", "ProviderCircuitOpen", "GatewayLatencyP99High", "KafkaConsumerLagHigh"} <= alerts


def named_dashboard(objects: list[dict[str, Any]]) -> dict[str, Any]:
    [dashboard] = [
        o for o in objects if o["kind"] == "ConfigMap" and o["metadata"].get("labels", {}).get("grafana_dashboard")
    ]
    return dashboard


def test_the_helm_values_run_airflow_without_celery_and_openbao_with_its_injector() -> None:
    airflow = yaml.safe_load((REPO / "k8s" / "helm" / "airflow-values.yaml").read_text())
    assert airflow["executor"] == "KubernetesExecutor" and airflow["redis"]["enabled"] is False
    openbao = yaml.safe_load((REPO / "k8s" / "helm" / "openbao-values.yaml").read_text())
    assert openbao["injector"]["enabled"] is True and openbao["server"]["ha"]["raft"]["enabled"] is True
