"""Webhook delivery: consumes ``gpubroker.webhooks`` and POSTs each signed delivery, retrying
5xx, 429 and timeouts with exponential backoff for 24 hours (``gpubroker_dags/delivery.py``).

How it runs under Airflow: a continuous DAG (``@continuous``, one run at a time) whose one task
is a delivery loop that holds its Kafka consumer for ``run_for_s`` (10 minutes) and then ends;
the scheduler starts the next run at once. A delivery is picked up as soon as it is on the
topic (no schedule to wait for: the goal is seconds), while the task still ends regularly, so a
new DAG version, a moved worker or a crash is taken up within minutes (a failed task is retried
with backoff; its uncommitted deliveries are consumed again and the gateway's record keeps them
from being sent twice). A short schedule that drains the topic would add up to its interval and
the task start-up (seconds to a minute) to every delivery; a deferrable task would need a
triggerer and a Kafka trigger, and still a task to make the POSTs.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, Param, get_current_context, task

from gpubroker_dags import config
from gpubroker_dags.defaults import dag_defaults, task_defaults
from gpubroker_dags.delivery import GROUP, DeliveryService, Options
from gpubroker_dags.gateway import Gateway

RUN_FOR_S = 600
GATEWAY_WAIT_S = 120.0
"""A gateway restart is waited out (the batch is kept, uncommitted) rather than failing the task."""

with DAG(
    "webhook_delivery",
    description="POST the gateway's signed webhook deliveries from gpubroker.webhooks, with retries",
    schedule="@continuous",
    params={
        "run_for_s": Param(RUN_FOR_S, type="integer", minimum=1, maximum=3600),
        "group": Param(GROUP, type="string", minLength=1),
    },
    default_args=task_defaults(
        retries=5,
        retry_delay=timedelta(seconds=10),
        max_retry_delay=timedelta(minutes=5),
        timeout=timedelta(seconds=RUN_FOR_S + 300),
    ),
    **dag_defaults(),
) as dag:

    @task
    def deliver() -> dict[str, Any]:
        params = get_current_context()["params"]
        options = Options(config.kafka_bootstrap(), config.allowed_networks(), group=params["group"])

        async def delivering() -> dict[str, Any]:
            async with Gateway(wait_s=GATEWAY_WAIT_S) as gateway:
                tally = await DeliveryService(gateway, options).run(float(params["run_for_s"]))
            return tally.summary()

        return asyncio.run(delivering())

    deliver()
