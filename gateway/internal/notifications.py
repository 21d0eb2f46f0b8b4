"""``/internal/v1/notifications``: a platform component raising a price alert about an offer (the
stream analytics' significant changes and anomalies). The alert goes to
``gpubroker.price-alerts`` like the analytics' own records, so every instance gives it to its
``price_alerts`` subscribers whose filters match the offer."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import ConfigDict, Field

from gpubroker.core import events
from gpubroker.core.prices import MAX_PRICE, Price, quantize
from gpubroker.gateway.errors import ApiError
from gpubroker.gateway.runtime import current
from gpubroker.gateway.schemas import Error

router = Router(tags=["internal"])


class PriceAlertBody(Schema):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["significant_change", "anomaly"]
    offer_id: Annotated[str, Field(min_length=1, max_length=64)]
    old_price: Annotated[Decimal | None, Field(gt=0, le=MAX_PRICE)] = None
    new_price: Annotated[Decimal | None, Field(gt=0, le=MAX_PRICE, description="Default: the offer's price now.")] = (
        None
    )
    detail: dict[str, Any] = Field(default_factory=dict, description="Why: the change in percent, the z-score, ...")


class AlertOut(Schema):
    kind: str
    provider: str
    offer_id: str
    gpu_type: str | None
    region: str
    old_price: Price | None
    new_price: Price
    at: datetime
    detail: dict[str, Any]


@router.post(
    "/price-alert",
    response={202: AlertOut, 401: Error, 403: Error, 404: Error, 422: Error, 503: Error},
    summary="Trigger a price alert",
)
async def price_alert(request: HttpRequest, body: PriceAlertBody) -> Status[dict[str, Any]]:
    runtime = current()
    offer = runtime.catalog.offers.get(body.offer_id)
    if offer is None:
        raise ApiError(404, "offer_id", f"no offer with id {body.offer_id!r}")
    new_price = body.new_price if body.new_price is not None else offer.price_per_hour
    if new_price is None:
        raise ApiError(422, "new_price", "the offer has no price; give new_price")
    alert = events.PriceAlert(
        body.kind,
        offer.provider,
        offer.id,
        offer.gpu_type,
        offer.region,
        None if body.old_price is None else quantize(body.old_price),
        quantize(new_price),
        datetime.now(UTC),
        body.detail,
    )
    await runtime.bus.publish(events.PRICE_ALERTS, offer.id, alert.encode())
    await runtime.bus.flush()
    answer = alert.to_json()
    del answer["user_id"], answer["alert_id"]
    return Status(202, {**answer, "old_price": alert.old_price, "new_price": alert.new_price, "at": alert.at})
