"""Operational endpoints: ``/health`` (per-provider status), ``/ready`` (may this instance take
traffic) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from gpubroker.core import fx
from gpubroker.gateway import db, fx_tables
from gpubroker.gateway.identity.access import Access, allow
from gpubroker.gateway.runtime import current


@allow(Access.OPEN, "GET", "HEAD")
async def health(request: HttpRequest) -> HttpResponse:
    runtime = current()
    now = datetime.now(UTC)
    providers = runtime.catalog.freshness(now)["providers"]
    healthy = [p for p in providers if p["status"] == "healthy"]
    verdicts = await runtime.verdicts.get()
    body = {
        "status": "ok" if providers and len(healthy) == len(providers) else "degraded",
        "mode": runtime.settings.mode,
        "providers": providers,
        "offers": len(runtime.catalog.offers),
        "catalog": {"fingerprint": runtime.catalog.fingerprint, "version": runtime.catalog.version},
        "bus": "kafka" if runtime.settings.kafka_bootstrap else "in-process",
        "database": {"pool": db.pool_stats()},
        "cache": {
            "redis": runtime.cache.redis_available,
            "warmed": runtime.warmed,
            "fast_path_hits": runtime.fastpath.hits,
        },
        "ingest": {"records": runtime.ingest.records, "rejected": runtime.ingest.rejected},
        "realtime": {
            "live": runtime.changes.live,
            "subscribers": runtime.hub.subscribers,
            "notified_records": runtime.notifier.handled,
            "alerts_fired": runtime.notifier.fired,
            "webhook_deliveries": runtime.notifier.delivered,
        },
        "analytics": runtime.market.health(now),
        "plugin_health": None
        if verdicts is None
        else {
            verdict["provider"]: {
                "passed": verdict["passed"],
                "consecutive_failures": verdict["consecutive_failures"],
                "degraded": verdict["degraded"],
                "reported_at": verdict["reported_at"].isoformat(),
            }
            for verdict in verdicts
        },
        "fx": fx_tables.describe(fx.rates()),
        "unknown_gpus": [
            {"provider": provider, "gpu_name": name}
            for provider, name in sorted(
                {(o.provider, o.gpu_name) for o in runtime.catalog.offers.values() if o.gpu_type is None}
            )
        ],
    }
    return HttpResponse(orjson.dumps(body), content_type="application/json")


@allow(Access.OPEN, "GET", "HEAD")
async def ready(request: HttpRequest) -> HttpResponse:
    """Readiness: 200 once this instance may take traffic, 503 with the reasons before (and while
    it stops). Liveness is ``/health``."""
    reasons = current().readiness()
    body = orjson.dumps({"ready": not reasons, "reasons": reasons})
    return HttpResponse(body, status=503 if reasons else 200, content_type="application/json")


@allow(Access.OPEN, "GET", "HEAD")
async def metrics(request: HttpRequest) -> HttpResponse:
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
