"""``/internal/v1/providers``: per-provider statistics, the plugin-health verdicts (reported by
the ``plugin_health`` DAG, see ``verdicts``), one offer's current pricing, and a reload of the
installed plugins' metadata."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import ConfigDict, Field

from gpubroker.core import events
from gpubroker.core.offer import Availability
from gpubroker.core.prices import Price
from gpubroker.gateway import db, verdicts
from gpubroker.gateway.errors import ApiError
from gpubroker.gateway.runtime import current
from gpubroker.gateway.schemas import Error

router = Router(tags=["internal"])


class ProviderStats(Schema):
    name: str
    installed: bool = Field(description="A plugin for it is installed in the gateway.")
    display_name: str | None
    version: str | None
    poll_interval_s: float | None
    status: str = Field(description="healthy, degraded, unhealthy, or unknown before its first event.")
    last_poll_at: datetime | None
    last_success_at: datetime | None
    stale: bool
    last_error: str | None
    checks_failing: str | None
    offers: int
    available_offers: int
    gpu_types: int
    min_price: Price | None


class Stats(Schema):
    providers: list[ProviderStats]
    offers: int
    at: datetime


@router.get("/stats", response={200: Stats, 401: Error, 403: Error}, summary="Provider statistics")
async def stats(request: HttpRequest) -> dict[str, Any]:
    runtime = current()
    now = datetime.now(UTC)
    catalog = runtime.catalog
    plugins = {provider.info.name: provider for provider in runtime.plugins()}
    offers: Counter[str] = Counter()
    available: Counter[str] = Counter()
    gpu_types: dict[str, set[str]] = defaultdict(set)
    cheapest: dict[str, Decimal] = {}
    for offer in catalog.offers.values():
        offers[offer.provider] += 1
        if offer.availability_status is Availability.AVAILABLE:
            available[offer.provider] += 1
        if offer.gpu_type is not None:
            gpu_types[offer.provider].add(offer.gpu_type)
        price = offer.price_per_hour
        if price is not None and offer.quarantined is None and price < cheapest.get(offer.provider, price + 1):
            cheapest[offer.provider] = price
    rows = []
    for name in sorted(plugins.keys() | catalog.provider_names()):
        plugin, state = plugins.get(name), catalog.providers.get(name)
        rows.append(
            {
                "name": name,
                "installed": plugin is not None,
                "display_name": plugin.info.display_name if plugin else None,
                "version": plugin.version if plugin else None,
                "poll_interval_s": plugin.info.poll_interval_s if plugin else None,
                "status": state.status if state else "unknown",
                "last_poll_at": state.last_poll_at if state else None,
                "last_success_at": state.last_success_at if state else None,
                "stale": state.stale(now) if state else True,
                "last_error": state.last_error if state else None,
                "checks_failing": state.checks_failing if state else None,
                "offers": offers[name],
                "available_offers": available[name],
                "gpu_types": len(gpu_types[name]),
                "min_price": cheapest.get(name),
            }
        )
    return {"providers": rows, "offers": len(catalog.offers), "at": now}


class CheckResult(Schema):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=64)]
    ok: bool
    detail: Annotated[str, Field(max_length=2000)] = ""


class HealthReport(Schema):
    model_config = ConfigDict(extra="forbid")

    provider: Annotated[str, Field(min_length=1, max_length=64)]
    checks: Annotated[list[CheckResult], Field(min_length=1, max_length=20)]
    run_id: Annotated[str, Field(min_length=1, max_length=250, description="The reporting run: counted once.")]
    at: datetime | None = None


class Verdict(Schema):
    provider: str
    passed: bool
    consecutive_failures: int
    degraded: bool = Field(description="provider.degraded was raised and the checks have not passed since.")
    checks: list[CheckResult]
    run_id: str
    reported_at: datetime


class HealthSummary(Schema):
    providers: list[Verdict]


@router.post(
    "/health-report",
    response={200: Verdict, 401: Error, 403: Error, 404: Error, 422: Error, 503: Error},
    summary="Report a provider's plugin-health checks",
)
async def health_report(request: HttpRequest, body: HealthReport) -> dict[str, Any]:
    runtime = current()
    if body.provider not in {provider.info.name for provider in runtime.plugins()} | runtime.catalog.provider_names():
        raise ApiError(404, "provider", f"no provider {body.provider!r} is installed or known")
    checks = [check.model_dump() for check in body.checks]
    report = verdicts.Report(
        body.provider, all(c["ok"] for c in checks), checks, body.run_id, body.at or datetime.now(UTC)
    )
    verdict, event = await db.run(verdicts.record, report, runtime.settings.health_failures_to_degrade)
    if event is not None:  # every instance applies it, as it does a worker's events
        await runtime.bus.publish(events.PROVIDER_EVENTS, event.provider, event.encode())
        await runtime.bus.flush()
    runtime.verdicts.forget()
    return verdict


@router.get(
    "/health-summary", response={200: HealthSummary, 401: Error, 403: Error, 503: Error}, summary="Health summary"
)
async def health_summary(request: HttpRequest) -> dict[str, Any]:
    return {"providers": await db.run(verdicts.summary)}


class Pricing(Schema):
    offer_id: str
    provider: str
    gpu_type: str | None
    gpu_count: int
    region: str
    currency: str
    price_per_hour: Price | None
    price_per_gpu_hour: Price | None
    spot: bool
    availability: str
    quarantined: str | None
    last_updated: datetime


@router.get(
    "/pricing/{offer_id}", response={200: Pricing, 401: Error, 403: Error, 404: Error}, summary="Current pricing"
)
async def pricing(request: HttpRequest, offer_id: str) -> dict[str, Any]:
    offer = current().catalog.offers.get(offer_id)
    if offer is None:
        raise ApiError(404, "offer_id", f"no offer with id {offer_id!r}")
    price = offer.price_per_hour
    per_gpu = None if price is None or not offer.gpu_count else price / offer.gpu_count
    return {
        "offer_id": offer.id,
        "provider": offer.provider,
        "gpu_type": offer.gpu_type,
        "gpu_count": offer.gpu_count,
        "region": offer.region,
        "currency": offer.currency,
        "price_per_hour": price,
        "price_per_gpu_hour": None if per_gpu is None else per_gpu.quantize(Decimal("0.000001")),
        "spot": offer.spot,
        "availability": offer.availability_status.value,
        "quarantined": offer.quarantined,
        "last_updated": offer.last_updated,
    }


class PluginMetadata(Schema):
    name: str
    display_name: str
    version: str
    api_base_url: str
    poll_interval_s: float
    concurrency_limit: int
    rate_limit_per_minute: int | None


class Plugins(Schema):
    providers: list[PluginMetadata]


@router.post(
    "/metadata/refresh", response={200: Plugins, 401: Error, 403: Error}, summary="Reload the plugins' metadata"
)
async def refresh_metadata(request: HttpRequest) -> dict[str, Any]:
    """Read the installed plugins' metadata again (an upgraded plugin's new limits and intervals)."""
    registry = current().plugins(reload=True)
    return {
        "providers": [
            {
                "name": p.info.name,
                "display_name": p.info.display_name,
                "version": p.version,
                "api_base_url": str(p.info.api_base_url),
                "poll_interval_s": p.info.poll_interval_s,
                "concurrency_limit": p.info.concurrency_limit,
                "rate_limit_per_minute": p.info.rate_limit_per_minute,
            }
            for p in registry
        ]
    }
