"""Airflow itself: every DAG loads (no import errors) with its schedule, retries and backoff, and
the real scheduler runs a DAG triggered through Airflow's REST API."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Services
from tests.dags.conftest import DAGS, Airflow, dag_env, gateway_env, service_token
from tests.integration.processes import gateway_process

pytestmark = pytest.mark.integration

DESCRIBE = """
import json, sys
from airflow.dag_processing.dagbag import BundleDagBag
bag = BundleDagBag(dag_folder=sys.argv[1], bundle_path=sys.argv[1])
print(json.dumps({
    "errors": {str(k): v for k, v in bag.import_errors.items()},
    "dags": {
        dag.dag_id: {
            "timetable": type(dag.timetable).__name__,
            "delta": getattr(dag.timetable, "delta", None) and dag.timetable.delta.total_seconds(),
            "max_active_runs": dag.max_active_runs,
            "catchup": dag.catchup,
            "tasks": {t.task_id: [t.retries, t.retry_delay.total_seconds(), t.retry_exponential_backoff,
                                  t.max_retry_delay.total_seconds(), t.execution_timeout.total_seconds()]
                      for t in dag.tasks},
        }
        for dag in bag.dags.values()
    },
}))
"""


def test_every_dag_loads_with_its_schedule_retries_and_backoff(airflow: Airflow) -> None:
    done = subprocess.run(
        [airflow.python, "-c", DESCRIBE, str(DAGS)],
        env={"AIRFLOW_HOME": airflow.home, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    bag = json.loads(done.stdout.strip().splitlines()[-1])
    assert bag["errors"] == {}
    dags = bag["dags"]
    assert set(dags) == {"plugin_health", "webhook_delivery", "cache_warming", "data_sync"}
    assert dags["plugin_health"]["delta"] == timedelta(minutes=1).total_seconds()  # FR-10.3
    assert dags["cache_warming"]["delta"] == timedelta(minutes=5).total_seconds()  # FR-10.2
    assert dags["data_sync"]["delta"] == timedelta(hours=1).total_seconds()  # FR-10.4
    assert dags["webhook_delivery"]["timetable"] == "ContinuousTimetable"
    for dag_id, dag in dags.items():
        assert dag["max_active_runs"] == 1 and dag["catchup"] is False, f"{dag_id} runs may overlap"
        for task_id, (retries, delay_s, backoff, max_delay_s, timeout_s) in dag["tasks"].items():
            assert retries >= 2 and delay_s > 0 and backoff == 2.0, f"{dag_id}.{task_id}: no exponential backoff"
            assert max_delay_s >= delay_s * 2 and timeout_s > 0, f"{dag_id}.{task_id}"  # FR-10.5


def api(airflow: Airflow, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{airflow.url}{path}", data, headers, method=method)
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read() or b"null")


def test_the_scheduler_runs_a_dag_triggered_through_the_rest_api(
    airflow: Airflow, services: Services, tmp_path: Path
) -> None:
    env = gateway_env(services, tmp_path)
    with gateway_process(env) as gateway:
        token = api(airflow, "POST", "/auth/token", {"username": airflow.user, "password": airflow.password})
        token = token["access_token"]
        # Where the DAG finds the gateway: Airflow Variables, as an operator would set them.
        settings = dag_env(airflow, services, gateway, service_token(env))
        for name in ("GPUBROKER_GATEWAY_URL", "GPUBROKER_SERVICE_TOKEN"):
            with contextlib.suppress(urllib.error.HTTPError):
                api(airflow, "DELETE", f"/api/v2/variables/{name}", token=token)
            api(airflow, "POST", "/api/v2/variables", {"key": name, "value": settings[name]}, token)
        deadline = time.monotonic() + 180
        while True:  # the DAG processor parses the folder on its own schedule
            try:
                api(airflow, "PATCH", "/api/v2/dags/cache_warming?update_mask=is_paused", {"is_paused": False}, token)
                break
            except urllib.error.HTTPError as exc:
                assert exc.code == 404 and time.monotonic() < deadline, f"cache_warming not parsed: {exc}"
                time.sleep(2)
        run = api(airflow, "POST", "/api/v2/dags/cache_warming/dagRuns", {"logical_date": None}, token)
        path = f"/api/v2/dags/cache_warming/dagRuns/{run['dag_run_id']}"
        deadline = time.monotonic() + 240
        state = run["state"]
        while state not in ("success", "failed") and time.monotonic() < deadline:
            time.sleep(2)
            state = api(airflow, "GET", path, token=token)["state"]
        tasks = api(airflow, "GET", f"{path}/taskInstances", token=token)["task_instances"]
        api(airflow, "PATCH", "/api/v2/dags/cache_warming?update_mask=is_paused", {"is_paused": True}, token)
        assert state == "success", [(t["task_id"], t["map_index"], t["state"]) for t in tasks]
        assert {t["task_id"] for t in tasks} == {"popular_queries", "instances", "warm"}


def test_airflow_runs_without_celery(airflow: Airflow) -> None:
    """FR-10.6 in Airflow's own environment: no Celery installed, the LocalExecutor configured."""
    check = (
        "import importlib.metadata as m, json; from airflow.configuration import conf;"
        "print(json.dumps([sorted(d.metadata['Name'].lower() for d in m.distributions()),"
        " conf.get('core', 'executor')]))"
    )
    done = subprocess.run(
        [airflow.python, "-c", check],
        env={"AIRFLOW_HOME": airflow.home, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    names, executor = json.loads(done.stdout.strip().splitlines()[-1])
    assert not [name for name in names if "celery" in name], names
    assert "django" not in names, "the DAGs' environment holds no gateway dependency"
    assert executor == "LocalExecutor"
