"""``/api/v2/alerts``: tell me when an offer matching these filters crosses this price.

The filters are the list endpoint's (validated the same way, so a rule that could never match
is refused when made). A rule fires when a matching offer's price crosses the threshold
(``realtime.rules``): the owner's WebSocket connections subscribed to ``alerts`` and SSE streams
get an ``alert`` event, and their ``price.alert`` webhooks a delivery (``realtime.notify``).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import ConfigDict, Field

from gpubroker.core.prices import Price
from gpubroker.gateway import params
from gpubroker.gateway.errors import ApiError
from gpubroker.gateway.identity.access import Requires, caller
from gpubroker.gateway.identity.plans import Permission
from gpubroker.gateway.models import PriceAlert
from gpubroker.gateway.runtime import current
from gpubroker.gateway.schemas import Error

router = Router(tags=["alerts"], auth=Requires(Permission.ALERTS))
MAX_ALERTS = 100


class AlertBody(Schema):
    model_config = ConfigDict(extra="forbid")

    filters: params.OfferFilterParams = Field(default_factory=params.OfferFilterParams)
    direction: Literal["below", "above"] = "below"
    price: Annotated[Decimal, Field(gt=0, max_digits=14, decimal_places=6, description="USD per hour.")]
    per_gpu: bool = Field(default=False, description="Compare the price per GPU-hour instead of the instance's.")


class AlertOut(Schema):
    id: int
    filters: dict[str, Any]
    direction: str
    price: Price
    per_gpu: bool
    active: bool
    created_at: datetime
    last_triggered_at: datetime | None


@router.post("", response={201: AlertOut, 401: Error, 409: Error, 422: Error}, summary="Create a price alert")
async def create_alert(request: HttpRequest, body: AlertBody) -> Status[dict[str, Any]]:
    """A price alert: fires when an offer matching the filters crosses the price, to the
    caller's WebSocket and SSE connections and price.alert webhooks."""
    identity = caller(request)
    params.filters(body.filters, current().catalog.provider_names())  # a 422 now, not a silent rule later
    if await PriceAlert.objects.filter(user_id=identity.user_id, active=True).acount() >= MAX_ALERTS:
        raise ApiError(409, None, f"at most {MAX_ALERTS} active alerts")
    row = await PriceAlert.objects.acreate(
        user_id=identity.user_id,
        filters=body.filters.model_dump(exclude_none=True),
        direction=body.direction,
        price=body.price,
        per_gpu=body.per_gpu,
    )
    current().notifier.invalidate()
    return Status(201, _json(row))


@router.get("", response={200: list[AlertOut], 401: Error}, summary="Your price alerts")
async def list_alerts(request: HttpRequest) -> list[dict[str, Any]]:
    """The caller's price alerts."""
    identity = caller(request)
    return [_json(row) async for row in PriceAlert.objects.filter(user_id=identity.user_id).order_by("pk")]


@router.delete("/{alert_id}", response={204: None, 401: Error, 404: Error}, summary="Delete a price alert")
async def delete_alert(request: HttpRequest, alert_id: int) -> Status[None]:
    """Delete one of the caller's price alerts."""
    identity = caller(request)
    deleted, _ = await PriceAlert.objects.filter(pk=alert_id, user_id=identity.user_id).adelete()
    if not deleted:
        raise ApiError(404, "alert_id", f"you have no alert {alert_id}")
    current().notifier.invalidate()
    return Status(204, None)


def _json(row: PriceAlert) -> dict[str, Any]:
    return {
        "id": row.pk,
        "filters": row.filters,
        "direction": row.direction,
        "price": row.price,
        "per_gpu": row.per_gpu,
        "active": row.active,
        "created_at": row.created_at,
        "last_triggered_at": row.last_triggered_at,
    }
