"""``/internal/v1/rentals``: what billing asks (SRS B.1): a cost estimate, and a rental's final cost."""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Router, Schema
from pydantic import ConfigDict, Field, model_validator

from gpubroker.core.prices import Price
from gpubroker.gateway.errors import ApiError
from gpubroker.gateway.models import Rental
from gpubroker.gateway.models.rentals import stretch_cost
from gpubroker.gateway.rentals.requests import offered_by
from gpubroker.gateway.rentals.states import ENDED
from gpubroker.gateway.runtime import current
from gpubroker.gateway.schemas import Error

router = Router(tags=["internal"])


class EstimateBody(Schema):
    model_config = ConfigDict(extra="forbid")

    offer_id: Annotated[str | None, Field(max_length=64)] = None
    rental_id: uuid.UUID | None = None
    hours: Annotated[float, Field(ge=0, le=24 * 366, description="How much longer it would run.")] = 1.0

    @model_validator(mode="after")
    def _one_subject(self) -> EstimateBody:
        if (self.offer_id is None) == (self.rental_id is None):
            raise ValueError("give offer_id (a rental to be) or rental_id (a rental so far), not both")
        return self


class Estimate(Schema):
    offer_id: str
    rental_id: uuid.UUID | None
    price_per_hour: Price
    currency: str
    billing_granularity_s: int
    cost_so_far: Price = Field(description="0 for an offer not rented yet.")
    hours: float
    estimated_cost: Price = Field(description="cost_so_far plus ``hours`` more, in whole billing units.")


class FinalizeBody(Schema):
    model_config = ConfigDict(extra="forbid")

    rental_id: uuid.UUID


class Final(Schema):
    rental_id: uuid.UUID
    user_id: int
    agent_id: uuid.UUID | None
    provider: str
    state: str
    currency: str
    price_per_hour: Price
    started_at: datetime | None
    ended_at: datetime | None
    final_cost: Price


@router.post("/cost-estimate", response={200: Estimate, 404: Error, 409: Error, 422: Error})
async def cost_estimate(request: HttpRequest, body: EstimateBody) -> dict[str, Any]:
    now = timezone.now()
    if body.rental_id is not None:
        rental = await _rental(body.rental_id)
        so_far = rental.cost_at(now)
        price, granularity, currency, offer_id = (
            rental.price_per_hour,
            rental.billing_granularity_s,
            rental.currency,
            rental.offer_id,
        )
        more = Decimal(0) if rental.state in ENDED else _more(price, granularity, body.hours)
    else:
        assert body.offer_id is not None
        offered = offered_by(current().rentals, current().catalog, body.offer_id)
        granularity = current().rentals.providers[offered.provider].adapter.billing_granularity_s
        price, currency, offer_id, so_far = offered.price_per_hour, offered.currency, offered.offer_id, Decimal(0)
        more = _more(price, granularity, body.hours)
    return {
        "offer_id": offer_id,
        "rental_id": body.rental_id,
        "price_per_hour": price,
        "currency": currency,
        "billing_granularity_s": granularity,
        "cost_so_far": so_far,
        "hours": body.hours,
        "estimated_cost": so_far + more,
    }


@router.post("/finalize", response={200: Final, 404: Error, 409: Error, 422: Error})
async def finalize(request: HttpRequest, body: FinalizeBody) -> dict[str, Any]:
    rental = await _rental(body.rental_id)
    if rental.state not in ENDED or rental.final_cost is None:
        raise ApiError(409, "rental_id", f"rental {rental.pk} is {rental.state}: its cost is final once it has ended")
    return {
        "rental_id": rental.pk,
        "user_id": rental.user_id,
        "agent_id": rental.agent_id,
        "provider": rental.provider,
        "state": rental.state,
        "currency": rental.currency,
        "price_per_hour": rental.price_per_hour,
        "started_at": rental.started_at,
        "ended_at": rental.ended_at,
        "final_cost": rental.final_cost,
    }


def _more(price: Decimal, granularity_s: int, hours: float) -> Decimal:
    start = timezone.now()
    seconds = math.ceil(hours * 3600)
    return stretch_cost(price, granularity_s, start, start + timedelta(seconds=seconds))


async def _rental(rental_id: uuid.UUID) -> Rental:
    rental = await Rental.objects.filter(pk=rental_id).afirst()
    if rental is None:
        raise ApiError(404, "rental_id", f"no rental {rental_id}")
    return rental
