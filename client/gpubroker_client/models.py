"""The API's answers as typed, immutable models.

Each model names the component schema of the gateway's OpenAPI document it mirrors (``SCHEMA``);
a test checks every field against that schema, so the two cannot drift. Prices are ``Decimal``
(USD per hour for the whole instance); times are aware ``datetime``s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import ClassVar


@dataclass(frozen=True)
class Offer:
    SCHEMA: ClassVar[str] = "Offer"
    id: str
    provider: str
    provider_offer_id: str
    name: str
    gpu_name: str
    gpu_type: str | None
    gpu_vendor: str | None
    gpu_count: int
    gpu_memory_gb: float | None
    price_per_hour: Decimal | None
    availability_status: str
    region: str
    last_updated: datetime
    vcpus: float | None = None
    ram_gb: float | None = None
    storage_gb: float | None = None
    cpu_arch: str | None = None
    spot_price: Decimal | None = None
    spot: bool = False
    currency: str = "USD"
    country: str | None = None
    compliance_tags: list[str] = field(default_factory=list)
    interconnect: list[str] = field(default_factory=list)
    resold_from: str | None = None
    source: str = "live"
    quarantined: str | None = None

    @property
    def price_per_gpu(self) -> Decimal | None:
        if self.price_per_hour is None or self.gpu_count <= 0:
            return None
        return self.price_per_hour / self.gpu_count


@dataclass(frozen=True)
class ProviderFreshness:
    """How fresh one provider's data is: ``status`` healthy/degraded/unhealthy, ``source`` live or
    snapshot, ``stale`` when its data is older than it should be."""

    SCHEMA: ClassVar[str] = "ProviderFreshness"
    name: str
    status: str
    source: str | None
    data_as_of: datetime | None
    last_poll_at: datetime | None
    last_success_at: datetime | None
    stale: bool
    offers: int
    last_error: str | None
    checks_failing: str | None = None
    """Why the scheduled plugin-health checks have failed several runs in a row, if they have."""


@dataclass(frozen=True)
class OfferPage:
    SCHEMA: ClassVar[str] = "OfferPage"
    items: list[Offer]
    count: int
    total: int
    next_cursor: str | None
    providers: list[ProviderFreshness]
    warnings: list[str]


@dataclass(frozen=True)
class RankingCriterion:
    SCHEMA: ClassVar[str] = "RankingCriterion"
    name: str
    weight: float
    benefit: bool
    ideal: float
    anti_ideal: float


@dataclass(frozen=True)
class RankedOffer:
    SCHEMA: ClassVar[str] = "RankedOffer"
    rank: int
    closeness: float
    offer: Offer


@dataclass(frozen=True)
class RankingPage:
    SCHEMA: ClassVar[str] = "RankingPage"
    items: list[RankedOffer]
    ranked: int
    excluded: dict[str, int]
    criteria: list[RankingCriterion]
    providers: list[ProviderFreshness]
    warnings: list[str]


@dataclass(frozen=True)
class Reason:
    SCHEMA: ClassVar[str] = "Reason"
    criterion: str
    value: float
    beats: float
    text: str


@dataclass(frozen=True)
class Pick:
    SCHEMA: ClassVar[str] = "Pick"
    offer: Offer
    closeness: float
    reasons: list[Reason]


@dataclass(frozen=True)
class Decision:
    SCHEMA: ClassVar[str] = "Decision"
    choice: Pick | None
    alternatives: list[Pick]
    matched: int
    ranked: int
    excluded: dict[str, int]
    criteria: list[RankingCriterion]
    reason: str | None
    providers: list[ProviderFreshness]
    warnings: list[str]


@dataclass(frozen=True)
class GpuVariant:
    SCHEMA: ClassVar[str] = "GpuVariant"
    memory_gb: int | None
    form_factor: str | None
    fp16_tflops: float | None
    fp32_tflops: float | None
    bandwidth_gbs: float | None


@dataclass(frozen=True)
class Gpu:
    SCHEMA: ClassVar[str] = "Gpu"
    name: str
    vendor: str
    architecture: str
    compute_capability: float | None
    memory_gb: list[int]
    aliases: list[str]
    fp16_tflops: float | None
    fp32_tflops: float | None
    bandwidth_gbs: float | None
    variants: list[GpuVariant]
    gpu_class: str = field(metadata={"json": "class"})


@dataclass(frozen=True)
class GpuCatalogue:
    SCHEMA: ClassVar[str] = "GpuCatalogue"
    items: list[Gpu]
    count: int


@dataclass(frozen=True)
class PricePoint:
    SCHEMA: ClassVar[str] = "PricePoint"
    at: datetime
    min: Decimal
    max: Decimal
    mean: Decimal
    observations: int


@dataclass(frozen=True)
class PriceSeries:
    SCHEMA: ClassVar[str] = "PriceSeries"
    gpu_type: str | None
    provider: str
    points: list[PricePoint]


@dataclass(frozen=True)
class PriceHistory:
    SCHEMA: ClassVar[str] = "PriceHistory"
    since: datetime
    until: datetime
    bucket: str
    series: list[PriceSeries]


MODELS: tuple[type, ...] = (
    Offer,
    ProviderFreshness,
    OfferPage,
    RankingCriterion,
    RankedOffer,
    RankingPage,
    Reason,
    Pick,
    Decision,
    GpuVariant,
    Gpu,
    GpuCatalogue,
    PricePoint,
    PriceSeries,
    PriceHistory,
)
"""Every model that mirrors a component schema of the API."""


@dataclass(frozen=True)
class StreamEvent:
    """One Server-Sent Event of ``/api/v2/providers/stream``: ``id`` to resume after, ``event``
    (``price_update``, ``availability``, ``offer_added``, ``offer_removed``, ``health_status``,
    ``price_alert``, ``alert``, ``gap``) and its JSON ``data``."""

    id: str | None
    event: str
    data: object
