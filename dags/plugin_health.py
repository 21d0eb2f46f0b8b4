"""Every minute (FR-10.3): each installed provider's worker health, last poll and conformance
smoke, one mapped task per provider as the gateway lists them, each reporting its verdict to the
gateway (``/internal/v1/providers/health-report``). Three failed runs in a row raise
``provider.degraded``. See ``gpubroker_dags/checks.py``."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, get_current_context, task

from gpubroker_dags.checks import check_provider
from gpubroker_dags.defaults import dag_defaults, task_defaults
from gpubroker_dags.gateway import Gateway

with DAG(
    "plugin_health",
    description="Provider plugins' health: worker, last poll and conformance smoke, reported to the gateway",
    schedule=timedelta(minutes=1),
    dagrun_timeout=timedelta(minutes=5),
    default_args=task_defaults(
        retries=2, retry_delay=timedelta(seconds=5), max_retry_delay=timedelta(seconds=30), timeout=timedelta(minutes=2)
    ),
    **dag_defaults(),
) as dag:

    @task
    def installed_providers() -> list[str]:
        async def listed() -> list[str]:
            async with Gateway() as gateway:
                stats = await gateway.get("/providers/stats")
            return [row["name"] for row in stats["providers"] if row["installed"]]

        return asyncio.run(listed())

    @task(map_index_template="{{ task.op_kwargs['provider'] }}")
    def check(provider: str) -> dict[str, Any]:
        run_id = get_current_context()["run_id"]

        async def checked() -> dict[str, Any]:
            async with Gateway() as gateway:
                return await check_provider(gateway, provider, run_id)

        return asyncio.run(checked())

    check.expand(provider=installed_providers())
