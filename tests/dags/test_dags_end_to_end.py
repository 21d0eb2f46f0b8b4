"""Each scheduled DAG run once with ``dag.test()`` in Airflow's environment, against gateway
processes on the real Kafka, Redis, PostgreSQL and OpenBao, checked by its effect: plugin-health
verdicts in ``/health`` (and ``provider.degraded`` after three failed runs), a warmed answer in
Redis, the refreshed FX table, pruned rows."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from gpubroker.core import events
from gpubroker.core.plugins import RegisteredProvider
from gpubroker.core.testkit.replay import ReplayServer
from tests.conftest import Services
from tests.dags.conftest import Airflow, dag_env, gateway_env, publish, run_dag, service_token
from tests.gateway.conftest import offer
from tests.integration.processes import (
    gateway_process,
    get_json,
    production_env,
    run_worker,
    seed_credentials,
    wait_for,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gateways(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[str], str]]:
    """Two gateway instances on the same services, and a platform service token."""
    env = gateway_env(services, tmp_path_factory.mktemp("gateway"))
    token = service_token(env)
    with gateway_process(env) as first, gateway_process(env) as second:
        yield [first, second], token


def internal(url: str, token: str) -> Any:
    """GET an internal route with the platform token alone (the operator's key is refused there)."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def test_plugin_health_reports_each_provider_and_degrades_one_failing_three_runs(
    airflow: Airflow, services: Services, gateways: tuple[list[str], str], vastai: RegisteredProvider, tmp_path: Path
) -> None:
    (gateway, _), token = gateways
    env = dag_env(airflow, services, gateway, token)
    with ReplayServer(vastai.adapter.recordings) as replay:  # vastai's worker polls once; runpod's never does
        seed_credentials(services, vastai)
        assert run_worker(production_env(services, tmp_path), "vastai", replay).returncode == 0
    wait_for(lambda: get_json(f"{gateway}/health")["providers"])
    earlier = (get_json(f"{gateway}/health")["plugin_health"] or {}).get("runpod", {})  # a database used before
    failed_before = earlier.get("consecutive_failures", 0)
    for run in range(3):
        outcome = run_dag(airflow, "plugin_health", env)
        assert outcome["state"] == "success", outcome["log"]
        mapped = sorted(task[1] for task in outcome["tasks"] if task[0] == "check")
        assert mapped == [0, 1], "one mapped task per installed provider"
        health = get_json(f"{gateway}/health")
        assert health["plugin_health"]["vastai"] == {**health["plugin_health"]["vastai"], "passed": True}
        assert health["plugin_health"]["runpod"]["consecutive_failures"] == failed_before + run + 1
    assert health["plugin_health"]["runpod"]["degraded"]
    runpod = wait_for(
        lambda: next(
            (p for p in get_json(f"{gateway}/health")["providers"] if p["name"] == "runpod" and p["checks_failing"]),
            None,
        )
    )
    summary = internal(f"{gateway}/internal/v1/providers/health-summary", token)
    verdicts = {p["provider"]: {c["name"]: c["ok"] for c in p["checks"]} for p in summary["providers"]}
    assert verdicts["vastai"] == {"worker": True, "last_poll": True, "conformance": True}
    # runpod's worker never polled here; on shared services an earlier test's poll of it may be
    # on the bus, in which case its worker check passes and only its last poll is too old.
    failing = [name for name, ok in verdicts["runpod"].items() if not ok]
    assert "last_poll" in failing and verdicts["runpod"]["conformance"]
    assert runpod["status"] in ("degraded", "unhealthy")
    assert all(name in runpod["checks_failing"] for name in failing), runpod["checks_failing"]


def test_cache_warming_renders_the_most_asked_queries_on_every_instance(
    airflow: Airflow, services: Services, gateways: tuple[list[str], str]
) -> None:
    (first, second), token = gateways
    item = offer("vastai", "warm-1", "H100", "2.25")
    publish(services, (events.OFFERS, item.id, events.encode_offer(item)))
    wait_for(lambda: get_json(f"{first}/api/v2/providers?provider=vastai&gpu=H100")["total"])
    for _ in range(5):  # asked on the first instance only
        get_json(f"{first}/api/v2/providers?provider=vastai&gpu=H100")
    fingerprint = get_json(f"{second}/health")["catalog"]["fingerprint"]
    cache = redis.Redis.from_url(services.redis_url)
    pattern = f"gpubroker:cache:v1:{fingerprint}:offers:*"
    for key in cache.scan_iter(pattern):
        cache.delete(key)
    env = dag_env(airflow, services, first, token, GPUBROKER_GATEWAY_INSTANCES=f'["{first}", "{second}"]')
    outcome = run_dag(airflow, "cache_warming", env)
    assert outcome["state"] == "success", outcome["log"]
    assert sorted(task[1] for task in outcome["tasks"] if task[0] == "warm") == [0, 1]
    # The first instance answers from its own memory; the second rendered it, into Redis too.
    assert list(cache.scan_iter(pattern)), "no warmed answer in Redis"


def test_data_sync_refreshes_the_fx_table_and_prunes(
    airflow: Airflow, services: Services, gateways: tuple[list[str], str]
) -> None:
    (gateway, _), token = gateways
    with psycopg.connect(services.database_url, autocommit=True) as db:
        db.execute(
            "INSERT INTO gateway_priceobservation (offer_id, provider, gpu_type, region, price_per_hour, observed_at) "
            "VALUES ('data-sync-old', 'vastai', 'H100', 'r', 1, now() - interval '400 days')"
        )
    assert get_json(f"{gateway}/health")["fx"]["source"] in ("bundled", "ecb-eurofxref")
    with ReplayServer(files("gpubroker_dags.recordings.ecb")) as ecb:
        url = f"{ecb.url}/stats/eurofxref/eurofxref-daily.xml"
        outcome = run_dag(airflow, "data_sync", dag_env(airflow, services, gateway, token, GPUBROKER_FX_SOURCE_URL=url))
    assert outcome["state"] == "success", outcome["log"]
    assert get_json(f"{gateway}/health")["fx"] == {"as_of": "2026-12-01", "source": "ecb-eurofxref", "currencies": 14}
    rates = internal(f"{gateway}/internal/v1/fx/rates", token)
    assert rates["usd_per_unit"]["EUR"] == "1.06"
    with psycopg.connect(services.database_url) as db:
        left = db.execute("SELECT count(*) FROM gateway_priceobservation WHERE offer_id = 'data-sync-old'").fetchone()
    assert left == (0,)
