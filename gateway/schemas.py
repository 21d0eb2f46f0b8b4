"""Response schemas for the OpenAPI document. Views return pre-rendered JSON of this shape."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

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
