"""The Airflow DAGs in the soak's long variant (``bench/soak.py --airflow``): the real scheduler
of ``scripts/services up airflow`` runs ``webhook_delivery`` (continuous) and ``plugin_health``
(every minute) against the gateways behind the load balancer, as an operator's Airflow would.

Airflow is started for the run and stopped after it. Its task processes inherit the scheduler's
environment, which is how the delivery task trusts the receivers' self-signed certificate
(``SSL_CERT_FILE``); everything else the DAGs need is an Airflow Variable, set through Airflow's
REST API (``gpubroker_dags.config``). Before the scheduler starts, the delivery group's offsets
are moved to the end of ``gpubroker.webhooks``, so the run delivers this run's alerts, not what
earlier runs on the same services left behind.

Accounted at the end: each DAG's runs by state, and the task instances that failed for good.
The deliveries themselves are accounted as without Airflow (``bench/soak_alerts.py``).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bench.cluster import group_at, topic_ends
from bench.servers import ROOT
from gpubroker.core import events
from tests.conftest import services_env

SERVICES = ROOT / "scripts" / "services"
DAGS = ("webhook_delivery", "plugin_health")
DELIVERY_GROUP = "gpubroker-webhook-delivery"
"""The ``webhook_delivery`` DAG's default consumer group (``gpubroker_dags.delivery.GROUP``)."""
PARSE_WAIT_S = 240.0
"""How long the DAG processor may take to list the DAGs after Airflow starts."""


def available() -> bool:
    """Whether Airflow's environment is installed (``scripts/services prepare airflow``)."""
    return bool(services_env().get("GPUBROKER_AIRFLOW_PYTHON"))


@dataclass
class AirflowAccount:
    runs: dict[str, Counter[str]] = field(default_factory=dict)
    """Per DAG, the runs that ran during the soak (at most 100), by state at the end."""
    failed_tasks: list[str] = field(default_factory=list)
    """Task instances that ended failed (after their retries)."""


class Orchestration:
    """Airflow for one soak run; ``running`` yields once the two DAGs are unpaused."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.account = AirflowAccount()
        self._url = ""
        self._token = ""

    @contextmanager
    def running(self, gateway: str, service_token: str, allowed_networks: str, cert: str) -> Iterator[None]:
        subprocess.run([SERVICES, "stop", "airflow"], check=False, capture_output=True, timeout=180)
        asyncio.run(_skip_to_end(self.bootstrap, DELIVERY_GROUP, events.WEBHOOKS))
        started = subprocess.run(
            [SERVICES, "up", "airflow"], env={**os.environ, "SSL_CERT_FILE": cert},
            capture_output=True, text=True, timeout=1200,
        )  # fmt: skip
        if started.returncode != 0:
            raise RuntimeError(f"scripts/services up airflow failed:\n{started.stderr[-3000:]}")
        since = time.time()
        try:
            env = services_env()
            self._url = env["GPUBROKER_AIRFLOW_URL"]
            login = {"username": env["GPUBROKER_AIRFLOW_USER"], "password": env["GPUBROKER_AIRFLOW_PASSWORD"]}
            self._token = self._api("POST", "/auth/token", login)["access_token"]
            for name, value in {
                "GPUBROKER_GATEWAY_URL": gateway,
                "GPUBROKER_SERVICE_TOKEN": service_token,
                "GPUBROKER_KAFKA_BOOTSTRAP": self.bootstrap,
                "GPUBROKER_WEBHOOK_ALLOWED_NETWORKS": allowed_networks,
            }.items():
                self._variable(name, value)
            for dag in DAGS:
                self._pause(dag, paused=False)
            yield
        finally:
            try:
                for dag in DAGS:
                    self._pause(dag, paused=True)
                self._tally(since)
            finally:
                subprocess.run([SERVICES, "stop", "airflow"], check=False, capture_output=True, timeout=180)

    def _variable(self, name: str, value: str) -> None:
        try:
            self._api("DELETE", f"/api/v2/variables/{name}")
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise
        self._api("POST", "/api/v2/variables", {"key": name, "value": value})

    def _pause(self, dag: str, *, paused: bool) -> None:
        deadline = time.monotonic() + PARSE_WAIT_S
        while True:  # the DAG processor parses the folder on its own schedule
            try:
                self._api("PATCH", f"/api/v2/dags/{dag}?update_mask=is_paused", {"is_paused": paused})
                return
            except urllib.error.HTTPError as exc:
                if exc.code != 404 or time.monotonic() > deadline:
                    raise RuntimeError(f"Airflow could not {'pause' if paused else 'unpause'} {dag}: {exc}") from exc
                time.sleep(2)

    def _tally(self, since: float) -> None:
        after = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since))
        for dag in DAGS:
            runs = self._api("GET", f"/api/v2/dags/{dag}/dagRuns?updated_at_gte={after}&limit=100")["dag_runs"]
            self.account.runs[dag] = Counter(run["state"] for run in runs)
            for run in runs:
                path = f"/api/v2/dags/{dag}/dagRuns/{run['dag_run_id']}/taskInstances"
                for task in self._api("GET", path)["task_instances"]:
                    if task["state"] == "failed":
                        self.account.failed_tasks.append(f"{dag}.{task['task_id']} ({run['dag_run_id']})")

    def _api(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Content-Type": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self._url + path, data, headers, method=method)
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read() or b"null")


async def _skip_to_end(bootstrap: str, group: str, topic: str) -> None:
    """Commit the end of every partition of ``topic`` for ``group`` (no member may be running)."""
    await group_at(bootstrap, group, await topic_ends(bootstrap, (topic,)))
