"""Hourly (FR-10.4): the FX rate table from the ECB's reference rates (the gateway keeps the
bundled table as the fallback and shows the date in use in ``/health``), the installed plugins'
metadata, and retention (what ``gpubroker prune`` does), each its own task."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, task

from gpubroker.core.prices import price_text
from gpubroker_dags import config, reference_rates
from gpubroker_dags.defaults import dag_defaults, task_defaults
from gpubroker_dags.gateway import Gateway

with DAG(
    "data_sync",
    description="Refresh the FX rate table and provider metadata, and apply retention",
    schedule=timedelta(hours=1),
    dagrun_timeout=timedelta(minutes=30),
    default_args=task_defaults(
        retries=4,
        retry_delay=timedelta(seconds=30),
        max_retry_delay=timedelta(minutes=10),
        timeout=timedelta(minutes=5),
    ),
    **dag_defaults(),
) as dag:

    @task
    def refresh_fx_rates() -> dict[str, Any]:
        async def refreshed() -> dict[str, Any]:
            table = await reference_rates.fetch(config.fx_source_url())
            body = {
                "as_of": table.as_of.isoformat(),
                "source": table.source,
                "usd_per_unit": {code: price_text(rate) for code, rate in table.usd_per_unit.items()},
            }
            async with Gateway() as gateway:
                stored: dict[str, Any] = await gateway.put("/fx/rates", body)
            return {"as_of": stored["as_of"], "source": stored["source"], "currencies": stored["currencies"]}

        return asyncio.run(refreshed())

    @task
    def refresh_provider_metadata() -> int:
        async def refreshed() -> int:
            async with Gateway() as gateway:
                return len((await gateway.post("/providers/metadata/refresh", {}))["providers"])

        return asyncio.run(refreshed())

    @task
    def apply_retention() -> dict[str, int]:
        async def pruned() -> dict[str, int]:
            async with Gateway() as gateway:
                removed: dict[str, int] = (await gateway.post("/maintenance/prune", {}))["removed"]
            return removed

        return asyncio.run(pruned())

    refresh_fx_rates()
    refresh_provider_metadata()
    apply_retention()
