"""Every 5 minutes (FR-10.2): the queries asked most in the last hour (the gateway counts them
across instances) are rendered into the cache of every gateway instance (``GPUBROKER_GATEWAY_INSTANCES``),
one mapped task per instance, so the next client asking finds them ready."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, task

from gpubroker_dags import config
from gpubroker_dags.defaults import dag_defaults, task_defaults
from gpubroker_dags.gateway import Gateway

WINDOW_S = 3600
TOP = 20

with DAG(
    "cache_warming",
    description="Warm the most requested queries of the last hour on every gateway instance",
    schedule=timedelta(minutes=5),
    dagrun_timeout=timedelta(minutes=4),
    default_args=task_defaults(
        retries=3, retry_delay=timedelta(seconds=5), max_retry_delay=timedelta(minutes=1), timeout=timedelta(minutes=2)
    ),
    **dag_defaults(),
) as dag:

    @task
    def popular_queries() -> list[str]:
        async def asked() -> list[str]:
            async with Gateway() as gateway:
                answer = await gateway.get("/cache/popular", window_s=WINDOW_S, limit=TOP)
            return [item["query"] for item in answer["queries"]]

        return asyncio.run(asked())

    @task
    def instances() -> list[str]:
        return config.gateway_instances()

    @task
    def warm(instance: str, queries: list[str]) -> dict[str, Any]:
        async def warmed() -> dict[str, Any]:
            if not queries:
                return {"instance": instance, "warmed": 0}
            async with Gateway(instance) as gateway:
                answer = await gateway.post("/cache/warm", {"queries": queries})
            ok = [item for item in answer["warmed"] if item["status"] == 200]
            return {"instance": instance, "warmed": len(ok), "fingerprint": answer["fingerprint"]}

        return asyncio.run(warmed())

    warm.partial(queries=popular_queries()).expand(instance=instances())
