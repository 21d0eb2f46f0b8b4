"""SRS 7.3 retention: price history kept 30 days, provider health checks 7, the audit log 90 (all
configurable).

Every gateway instance prunes once an hour; deleting rows that are already gone is harmless, so
instances need no coordination. ``gpubroker prune`` runs the same once, for cron or a DAG.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from gpubroker.core.settings import Settings
from gpubroker.gateway import db

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 3600.0


def prune(settings: Settings, now: datetime | None = None) -> dict[str, int]:
    """Delete what is older than its retention; returns how many rows of each kind went."""
    from gpubroker.gateway.models import AuditEvent, HealthCheck, PriceObservation

    now = now or datetime.now(UTC)
    prices, _ = PriceObservation.objects.filter(
        observed_at__lt=now - timedelta(days=settings.offer_history_days)
    ).delete()
    checks, _ = HealthCheck.objects.filter(at__lt=now - timedelta(days=settings.health_history_days)).delete()
    audit, _ = AuditEvent.objects.filter(at__lt=now - timedelta(days=settings.audit_history_days)).delete()
    return {"price_observations": prices, "health_checks": checks, "audit_events": audit}


async def run_periodically(settings: Settings) -> None:
    while True:
        try:
            removed = await db.run(prune, settings)
            if any(removed.values()):
                log.info("retention: removed %s", removed)
        except Exception:
            log.exception("retention: pruning failed; will retry")
        await asyncio.sleep(PRUNE_EVERY_S)
