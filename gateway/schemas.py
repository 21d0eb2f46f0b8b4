"""Response schemas for the OpenAPI document. Views return pre-rendered JSON of this shape."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, create_model

from gpubroker.core.offer import Offer


class ProviderFreshness(BaseModel):
    name: str
    status: str
    source: str | None
    data_as_of: datetime | None
    last_poll_at: datetime | None
    last_success_at: datetime | None
    stale: bool
    offers: int
    last_error: str | None
    checks_failing: str | None = Field(
        default=None, description="Why the scheduled plugin-health checks have failed several runs in a row."
    )


class OfferPage(BaseModel):
    items: list[Offer]
    count: int
    total: int
    next_cursor: str | None
    providers: list[ProviderFreshness]
    warnings: list[str]


class ErrorDetail(BaseModel):
    field: str | None
    message: str


class Error(BaseModel):
    detail: list[ErrorDetail]
    request_id: str | None = Field(default=None, description="Also in the X-Request-ID header: quote it in a report.")


class GpuVariant(BaseModel):
    memory_gb: int | None
    form_factor: str | None
    fp16_tflops: float | None
    fp32_tflops: float | None
    bandwidth_gbs: float | None


Gpu = create_model(
    "Gpu",
    __doc__="One GPU family with its datasheet figures (``class`` is datacenter, workstation or consumer).",
    name=(str, ...),
    vendor=(str, ...),
    architecture=(str, ...),
    compute_capability=(float | None, Field(description="NVIDIA's CUDA compute capability (8.6); null for others.")),
    memory_gb=(list[int], ...),
    aliases=(list[str], ...),
    fp16_tflops=(float | None, ...),
    fp32_tflops=(float | None, ...),
    bandwidth_gbs=(float | None, ...),
    variants=(list[GpuVariant], ...),
    **{"class": (str, ...)},  # a Python keyword, so the field is declared by name
)


class GpuCatalogue(BaseModel):
    items: list[Gpu]
    count: int


class RankedOffer(BaseModel):
    rank: int
    closeness: float
    offer: Offer


class RankingCriterion(BaseModel):
    name: str
    weight: float
    benefit: bool
    ideal: float
    anti_ideal: float


class RankingPage(BaseModel):
    items: list[RankedOffer]
    ranked: int
    excluded: dict[str, int]
    criteria: list[RankingCriterion]
    providers: list[ProviderFreshness]
    warnings: list[str]


class BulkError(BaseModel):
    status: int
    detail: list[ErrorDetail]


class BulkPage(BaseModel):
    results: list[OfferPage | BulkError]
    count: int


class Reason(BaseModel):
    criterion: str
    value: float
    beats: float = Field(description="Share of the other candidates this offer beats on the criterion, 0 to 1.")
    text: str


class Pick(BaseModel):
    offer: Offer
    closeness: float
    reasons: list[Reason]


class Decision(BaseModel):
    choice: Pick | None
    alternatives: list[Pick]
    matched: int
    ranked: int
    excluded: dict[str, int]
    criteria: list[RankingCriterion]
    reason: str | None = Field(description="Why there is no choice, when there is none.")
    providers: list[ProviderFreshness]
    warnings: list[str]


class PricePoint(BaseModel):
    at: datetime
    min: float
    max: float
    mean: float
    observations: int


class PriceSeries(BaseModel):
    gpu_type: str | None
    provider: str
    points: list[PricePoint]


class PriceHistory(BaseModel):
    since: datetime
    until: datetime
    bucket: str
    series: list[PriceSeries]
