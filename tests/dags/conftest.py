"""Fixtures for the DAGs: Airflow's environment and services (``scripts/services up airflow``),
a gateway process on the real services, a platform service token, and running a DAG once with
``dag.test()`` in Airflow's interpreter. ``gpubroker_dags`` (the DAGs' own package) is
importable here too, for the tests that need no Airflow."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gpubroker.core.bus.kafka import KafkaBus
from tests.conftest import Services, services_env
from tests.integration.processes import BIN, SERVICES, production_env

DAGS = Path(__file__).resolve().parents[2] / "dags"
DRIVE = Path(__file__).resolve().parent / "drive.py"
sys.path.insert(0, str(DAGS))


@dataclass(frozen=True)
class Airflow:
    python: str
    home: str
    url: str
    user: str
    password: str


@pytest.fixture(scope="package")
def airflow(services: Services) -> Iterator[Airflow]:
    """Airflow's scheduler, DAG processor and API server, started for these tests and stopped
    after them (installed first if need be: minutes, once per machine)."""
    subprocess.run([SERVICES, "up", "airflow"], check=True, timeout=1200)
    env = services_env()
    try:
        yield Airflow(
            env["GPUBROKER_AIRFLOW_PYTHON"],
            env["GPUBROKER_AIRFLOW_HOME"],
            env["GPUBROKER_AIRFLOW_URL"],
            env["GPUBROKER_AIRFLOW_USER"],
            env["GPUBROKER_AIRFLOW_PASSWORD"],
        )
    finally:
        subprocess.run([SERVICES, "stop", "airflow"], check=False, timeout=120)


def gateway_env(services: Services, data_dir: Path, **settings: str) -> dict[str, str]:
    """A gateway on the real services, in embedded mode so that plain-http receivers on loopback
    may be webhook targets (production takes https only)."""
    return {
        **production_env(services, data_dir),
        "GPUBROKER_MODE": "embedded",
        "GPUBROKER_PLUGINS": '["vastai", "runpod"]',
        "GPUBROKER_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.0/8", "::1/128"]',
        **settings,
    }


def service_token(env: dict[str, str]) -> str:
    made = subprocess.run(
        [BIN / "gpubroker", "auth", "service-token", "airflow", "--ttl-s", "7200"],
        env=env, check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return made.stdout.strip()


def dag_env(airflow: Airflow, services: Services, gateway: str, token: str, **settings: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GPUBROKER_", "AIRFLOW"))},
        "AIRFLOW_HOME": airflow.home,
        "GPUBROKER_GATEWAY_URL": gateway,
        "GPUBROKER_SERVICE_TOKEN": token,
        "GPUBROKER_KAFKA_BOOTSTRAP": services.kafka_bootstrap,
        **settings,
    }


def run_dag(airflow: Airflow, dag_id: str, env: dict[str, str], conf: dict[str, Any] | None = None) -> dict[str, Any]:
    """``dag.test()`` of ``dag_id``; returns the run's state and its task instances' states."""
    done = subprocess.run(
        [airflow.python, DRIVE, dag_id, json.dumps(conf or {})],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0 and lines, f"dag.test({dag_id}) failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    outcome: dict[str, Any] = json.loads(lines[-1])
    outcome["log"] = done.stdout[-6000:] + done.stderr[-6000:]
    return outcome


def popen_dag(airflow: Airflow, dag_id: str, env: dict[str, str], conf: dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [airflow.python, DRIVE, dag_id, json.dumps(conf)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def publish(services: Services, *records: tuple[str, str, bytes]) -> None:
    """Put records on the real Kafka, as the product's producers would, and wait for them."""

    async def send() -> None:
        bus = KafkaBus(services.kafka_bootstrap)
        await bus.start()
        try:
            for topic, key, value in records:
                await bus.publish(topic, key, value)
            await bus.flush()
        finally:
            await bus.stop()

    asyncio.run(send())
