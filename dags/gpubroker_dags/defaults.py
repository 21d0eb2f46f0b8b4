"""What every GPUBROKER DAG shares: retries with exponential backoff (FR-10.5), bounded task
time, and no overlapping runs. Plain data, so it can be read without Airflow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

START = datetime(2026, 1, 1, tzinfo=UTC)
BACKOFF = 2.0
"""Each retry waits twice as long as the one before (``retry_delay``, then x2, x4, ...)."""


def task_defaults(
    *, retries: int, retry_delay: timedelta, max_retry_delay: timedelta, timeout: timedelta
) -> dict[str, Any]:
    return {
        "owner": "gpubroker",
        "retries": retries,
        "retry_delay": retry_delay,
        "retry_exponential_backoff": BACKOFF,
        "max_retry_delay": max_retry_delay,
        "execution_timeout": timeout,
    }


def dag_defaults(**kwargs: Any) -> dict[str, Any]:
    """No catch-up of missed intervals and one run at a time: a slow run is never overlapped."""
    return {"start_date": START, "catchup": False, "max_active_runs": 1, "tags": ["gpubroker"], **kwargs}
