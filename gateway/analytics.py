"""``GET /analytics/price-history``: how prices moved, from the observations kept in the database.

An observation is written whenever an offer's price changes (and when it first appears), so a
bucket's minimum and maximum are exact and its mean is the mean of the prices observed in it.
History is kept for ``offer_history_days`` (30 by default, SRS 7.3); see ``retention``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import orjson
from ninja import Schema
from pydantic import ConfigDict, Field

from gpubroker.core.prices import parse_price, price_number, quantize
from gpubroker.gateway import db
from gpubroker.gateway.errors import invalid
from gpubroker.gateway.params import MAX_VALUES, Names, Word, gpu_types, split

Bucket = Literal["hour", "day"]
DEFAULT_WINDOW = timedelta(days=7)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


class HistoryParams(Schema):
    model_config = ConfigDict(extra="forbid")

    gpu: Annotated[list[Word] | None, Field(max_length=MAX_VALUES, description="GPU types, as for the offer list.")] = (
        None
    )
    provider: Names = None
    offer_id: Names = None
    since: Annotated[datetime | None, Field(description="ISO 8601; default: 7 days ago.")] = None
    until: Annotated[datetime | None, Field(description="ISO 8601; default: now.")] = None
    bucket: Annotated[Bucket, Field(description="hour or day.")] = "hour"


@dataclass(frozen=True)
class HistoryQuery:
    gpu_types: frozenset[str]
    providers: frozenset[str]
    offer_ids: frozenset[str]
    since: datetime
    until: datetime
    bucket: Bucket

    def cache_key(self) -> str:
        described = orjson.dumps(
            [
                sorted(self.gpu_types),
                sorted(self.providers),
                sorted(self.offer_ids),
                self.since,
                self.until,
                self.bucket,
            ]
        )
        return hashlib.sha1(described).hexdigest()


def history_query(params: HistoryParams, known_providers: set[str], now: datetime, *, kept_days: int) -> HistoryQuery:
    oldest = now - timedelta(days=kept_days)
    until = _aware(params.until, "until") or now
    since = _aware(params.since, "since") or max(until - DEFAULT_WINDOW, oldest)
    if since >= until:
        raise invalid("since", "since must be before until")
    if until <= oldest:
        raise invalid(
            "until", f"price history is kept {kept_days} days: nothing before {oldest:%Y-%m-%dT%H:%M:%SZ} remains"
        )
    providers = frozenset(split(params.provider))
    unknown = sorted(providers - known_providers)
    if unknown:
        raise invalid("provider", f"unknown provider {unknown[0]!r}; known: {', '.join(sorted(known_providers))}")
    # Align to the bucket so the same question asked a second later hits the same cache entry.
    step = timedelta(hours=1) if params.bucket == "hour" else timedelta(days=1)
    until = datetime.fromtimestamp((until.timestamp() // step.total_seconds() + 1) * step.total_seconds(), until.tzinfo)
    return HistoryQuery(
        gpu_types(params.gpu), providers, frozenset(split(params.offer_id)), max(since, oldest), until, params.bucket
    )


def _aware(value: datetime | None, field: str) -> datetime | None:
    """``value`` in UTC, within the years the product can have observed."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise invalid(field, f"{field} needs a timezone, e.g. 2026-11-26T12:00:00Z")
    try:
        value = value.astimezone(UTC)
    except (OverflowError, ValueError):
        value = None
    if value is None or not EARLIEST <= value <= LATEST:
        raise invalid(field, f"{field} must lie between {EARLIEST.year} and {LATEST.year}")
    return value


async def render(query: HistoryQuery) -> bytes:
    return orjson.dumps(await db.run(_series, query))


def _series(query: HistoryQuery) -> dict[str, object]:
    from django.db.models import Avg, Count, Max, Min
    from django.db.models.functions import Trunc

    from gpubroker.gateway.models import PriceObservation

    observations = PriceObservation.objects.filter(observed_at__gte=query.since, observed_at__lt=query.until)
    if query.gpu_types:
        observations = observations.filter(gpu_type__in=query.gpu_types)
    if query.providers:
        observations = observations.filter(provider__in=query.providers)
    if query.offer_ids:
        observations = observations.filter(offer_id__in=query.offer_ids)
    buckets = (
        observations.annotate(at=Trunc("observed_at", query.bucket))
        .values("gpu_type", "provider", "at")
        .annotate(low=Min("price_per_hour"), high=Max("price_per_hour"), mean=Avg("price_per_hour"), n=Count("id"))
        .order_by("gpu_type", "provider", "at")
    )
    series: dict[tuple[str | None, str], list[dict[str, object]]] = {}
    for row in buckets:
        series.setdefault((row["gpu_type"], row["provider"]), []).append(
            {
                "at": row["at"],
                "min": price_number(row["low"]),
                "max": price_number(row["high"]),
                "mean": price_number(quantize(parse_price(row["mean"]))),
                "observations": row["n"],
            }
        )
    return {
        "since": query.since,
        "until": query.until,
        "bucket": query.bucket,
        "series": [
            {"gpu_type": gpu, "provider": provider, "points": points} for (gpu, provider), points in series.items()
        ],
    }
