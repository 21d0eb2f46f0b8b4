"""Plugin-health verdicts: the ``plugin_health`` DAG's report per provider per run.

A provider whose report fails ``health_failures_to_degrade`` runs in a row gets a
``provider.degraded`` provider event (its status becomes degraded everywhere: ``/health``, the
list's freshness block, ``health_status`` subscribers and ``provider.health`` webhooks); the first
passing report after that raises ``provider.recovered``. A report is counted once per run, so a
retried task that reports again changes nothing. The verdicts are shown in ``/health``, read
through a short-lived copy so that probes do not each query the database.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gpubroker.core import events
from gpubroker.gateway import db

SUMMARY_TTL_S = 5.0


@dataclass(frozen=True)
class Report:
    provider: str
    passed: bool
    checks: list[dict[str, Any]]
    run_id: str
    at: datetime


def record(report: Report, failures_to_degrade: int) -> tuple[dict[str, Any], events.ProviderEvent | None]:
    """Store the report; returns the provider's verdict and the event it raises, if any."""
    from django.db import transaction

    from gpubroker.gateway.models import ProviderVerdict

    with transaction.atomic():
        row = ProviderVerdict.objects.select_for_update().filter(provider=report.provider).first()
        if row is None:
            row = ProviderVerdict(provider=report.provider, consecutive_failures=0, degraded=False)
        elif row.run_id == report.run_id:
            return summary_of(row), None
        event = None
        if report.passed:
            row.consecutive_failures = 0
            if row.degraded:
                row.degraded = False
                event = events.ProviderEvent(report.provider, events.PROVIDER_RECOVERED, report.at, {})
        else:
            row.consecutive_failures += 1
            if row.consecutive_failures >= failures_to_degrade and not row.degraded:
                row.degraded = True
                failed = ", ".join(check["name"] for check in report.checks if not check.get("ok"))
                reason = f"{row.consecutive_failures} plugin-health runs in a row failed: {failed or 'checks'}"
                data = {"reason": reason, "checks": report.checks}
                event = events.ProviderEvent(report.provider, events.PROVIDER_DEGRADED, report.at, data)
        row.passed, row.checks, row.run_id, row.reported_at = report.passed, report.checks, report.run_id, report.at
        row.save()
        return summary_of(row), event


def summary() -> list[dict[str, Any]]:
    from gpubroker.gateway.models import ProviderVerdict

    return [summary_of(row) for row in ProviderVerdict.objects.order_by("provider")]


def summary_of(row: Any) -> dict[str, Any]:
    return {
        "provider": row.provider,
        "passed": row.passed,
        "consecutive_failures": row.consecutive_failures,
        "degraded": row.degraded,
        "checks": row.checks,
        "run_id": row.run_id,
        "reported_at": row.reported_at,
    }


class SummaryCache:
    """The verdicts as ``/health`` shows them, read at most every ``SUMMARY_TTL_S``."""

    def __init__(self) -> None:
        self._value: list[dict[str, Any]] | None = None
        self._read_at = 0.0

    def forget(self) -> None:
        self._value = None

    async def get(self) -> list[dict[str, Any]] | None:
        """None when the database cannot be reached and nothing was read yet."""
        if self._value is None or time.monotonic() - self._read_at > SUMMARY_TTL_S:
            try:
                self._value = await db.run(summary)
                self._read_at = time.monotonic()
            except db.DatabaseUnavailable:
                pass
        return self._value
