"""The stream analytics job in the soak's long variant (``bench/soak.py --flink``): submitted to
the Flink cluster of ``scripts/services up flink`` on the product's topics before the workers
start, cancelled at the end, and accounted for by its market windows.

Each closed 1-minute window of a GPU type over every continent (``gpubroker.price-aggregates``)
counts the price updates whose ``at`` fell in it; the soak compares that count with the updates
the workers published, so an update the job lost, or counted twice, shows. The lateness is long
enough for what the Kafka phase holds back (the workers' outboxes deliver it when the broker is
back, with its original time); windows still open at the end are not compared.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from gpubroker.core import events
from tests.flink.cluster import Flink

LATENESS_S = 150
"""Longer than the Kafka phase's outage and the outboxes' catching up."""


def available() -> bool:
    """Whether ``scripts/services env`` named a Flink cluster."""
    return bool(os.environ.get("GPUBROKER_FLINK_REST") and os.environ.get("GPUBROKER_FLINK_PYTHON"))


@dataclass
class FlinkAccount:
    job: str = ""
    state: str = ""
    """The job's state at the end (before it is cancelled): RUNNING."""
    restarts: int = 0
    windows: int = 0
    """Closed windows of a GPU type over every continent."""
    exact: int = 0
    """Of those, windows whose count is the number of updates published in them."""
    differing: list[str] = field(default_factory=list)
    duplicated: int = 0
    """Windows emitted more than once."""


class Analytics:
    """The job of one soak run."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.flink = Flink(
            os.environ["GPUBROKER_FLINK_REST"], Path(os.environ["GPUBROKER_FLINK_PYTHON"]).parent / "gpubroker-flink"
        )
        self.account = FlinkAccount()

    @contextmanager
    def running(self) -> Iterator[None]:
        job = self.flink.submit(
            f"--bootstrap={self.bootstrap}",
            f"--name=soak-{time.time_ns()}",
            "--start=latest",
            f"--lateness-s={LATENESS_S}",
        )
        self.account.job = job
        try:
            yield
            self.account.state = self.flink.state(job)
            self.account.restarts = self.flink.restarts(job)
        finally:
            self.flink.cancel(job)


def account(
    result: FlinkAccount, updates: list[events.PriceUpdate], aggregates: list[events.PriceAggregate]
) -> FlinkAccount:
    """Compare each closed all-continent window's count with the updates published in it."""
    published: Counter[tuple[str, float]] = Counter()
    for update in updates:
        if update.gpu_type is not None and update.gpu_count is not None:
            start = update.at.timestamp() // 60 * 60
            published[(update.gpu_type, start)] += 1
    emitted: Counter[tuple[str, float]] = Counter()
    for aggregate in aggregates:
        if aggregate.continent is not None:
            continue
        window = (aggregate.gpu_type, aggregate.window_start.timestamp())
        emitted[window] += 1
        if emitted[window] > 1:
            continue
        if aggregate.count == published[window]:
            result.exact += 1
        else:
            result.differing.append(
                f"{aggregate.gpu_type} {aggregate.window_start:%H:%M}: {aggregate.count} counted,"
                f" {published[window]} published"
            )
    result.windows = len(emitted)
    result.duplicated = sum(n - 1 for n in emitted.values())
    return result
