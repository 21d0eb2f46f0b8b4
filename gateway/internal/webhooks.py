"""``/internal/v1/webhooks``: the delivery service's side of webhook deliveries (see
``realtime.delivery_log``): register what it took from ``gpubroker.webhooks``, report each
attempt, and claim the retries that are due."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import ConfigDict, Field

from gpubroker.core import events
from gpubroker.core.webhook_policy import ERROR_KINDS
from gpubroker.gateway import db
from gpubroker.gateway.realtime import delivery_log
from gpubroker.gateway.runtime import current
from gpubroker.gateway.schemas import Error

router = Router(tags=["internal"])
MAX_BATCH = 500


class DeliveryIn(Schema):
    """A ``webhook-delivery/1`` envelope as it was on the topic (without ``schema``); ``body`` and
    ``headers`` may be left out when registering (they come with a failed attempt's report)."""

    model_config = ConfigDict(extra="ignore")

    delivery_id: Annotated[str, Field(min_length=1, max_length=64)]
    webhook_id: int
    user_id: int
    url: Annotated[str, Field(min_length=1, max_length=500)]
    event: Annotated[str, Field(min_length=1, max_length=32)]
    body: str = ""
    headers: dict[str, str] = Field(default_factory=dict)
    created_at: datetime

    def envelope(self) -> events.WebhookDelivery:
        return events.WebhookDelivery(
            self.delivery_id,
            self.webhook_id,
            self.user_id,
            self.url,
            self.event,
            self.body.encode(),
            self.headers,
            self.created_at,
        )


class Deliveries(Schema):
    model_config = ConfigDict(extra="forbid")

    deliveries: Annotated[list[DeliveryIn], Field(min_length=1, max_length=MAX_BATCH)]


class Instruction(Schema):
    delivery_id: str
    action: Literal["send", "skip"]
    reason: str | None
    attempt: int | None = Field(description="The number of the attempt to make, for send.")


class Instructions(Schema):
    deliveries: list[Instruction]


class AttemptIn(Schema):
    model_config = ConfigDict(extra="forbid")

    delivery_id: Annotated[str, Field(min_length=1, max_length=64)]
    attempt: Annotated[int, Field(ge=1, le=1000)]
    at: datetime
    status_code: Annotated[int | None, Field(ge=100, le=599)] = None
    error_kind: Literal[ERROR_KINDS] | None = Field(  # type: ignore[valid-type]
        default=None, description="timeout, connection or refused (the target check), when no answer came."
    )
    error: Annotated[str | None, Field(max_length=2000)] = None
    latency_ms: Annotated[float | None, Field(ge=0)] = None
    body: str | None = Field(default=None, description="The signed request, with an attempt that did not deliver.")
    headers: dict[str, str] | None = None


class Attempts(Schema):
    model_config = ConfigDict(extra="forbid")

    attempts: Annotated[list[AttemptIn], Field(min_length=1, max_length=MAX_BATCH)]


class DeliveryState(Schema):
    delivery_id: str
    status: str = Field(description="pending, delivered, failed, refused, exhausted, cancelled or unknown.")
    next_attempt_at: datetime | None


class Recorded(Schema):
    deliveries: list[DeliveryState]
    dead_lettered: int
    disabled_webhooks: list[int]


class Claim(Schema):
    model_config = ConfigDict(extra="forbid")

    limit: Annotated[int, Field(ge=1, le=MAX_BATCH)] = 100


class DueDelivery(DeliveryIn):
    attempt: int


class Due(Schema):
    deliveries: list[DueDelivery]


@router.post(
    "/deliveries", response={200: Instructions, 401: Error, 403: Error, 422: Error, 503: Error}, summary="Register"
)
async def register(request: HttpRequest, body: Deliveries) -> dict[str, Any]:
    """Register deliveries taken from ``gpubroker.webhooks``; each answer says send or skip."""
    envelopes = [item.envelope() for item in body.deliveries]
    return {"deliveries": await db.run(delivery_log.register, envelopes, datetime.now(UTC))}


@router.post("/attempts", response={200: Recorded, 401: Error, 403: Error, 422: Error, 503: Error}, summary="Report")
async def record_attempts(request: HttpRequest, body: Attempts) -> dict[str, Any]:
    """Record attempts: a delivery exhausted by them goes to ``gpubroker.dlq.webhooks``, a webhook
    failing for too long is disabled and its owner told, before this answers."""
    runtime = current()
    attempts = [
        delivery_log.Attempt(
            a.delivery_id, a.attempt, a.at, a.status_code, a.error_kind, a.error, a.latency_ms, a.body, a.headers
        )
        for a in body.attempts
    ]
    result = await db.run(delivery_log.record, attempts, runtime.settings, datetime.now(UTC))
    for delivery in result.exhausted:
        dead = events.dead_letter_topic(events.WEBHOOKS)
        await runtime.bus.publish(dead, str(delivery.webhook_id), delivery.encode())
    for notice in result.disabled:
        await runtime.bus.publish(events.PRICE_ALERTS, str(notice.user_id), notice.encode())
    if result.exhausted or result.disabled:
        await runtime.bus.flush()
    if result.disabled:
        runtime.notifier.invalidate()
    return {
        "deliveries": [{"delivery_id": key, **value} for key, value in result.statuses.items()],
        "dead_lettered": len(result.exhausted),
        "disabled_webhooks": [notice.data["webhook_id"] for notice in result.disabled],
    }


@router.post(
    "/deliveries/due", response={200: Due, 401: Error, 403: Error, 422: Error, 503: Error}, summary="Claim retries"
)
async def claim_due(request: HttpRequest, body: Claim) -> dict[str, Any]:
    """Deliveries whose next attempt is due, leased to the caller for a while."""
    claimed = await db.run(delivery_log.claim_due, body.limit, datetime.now(UTC))
    return {
        "deliveries": [
            {
                "delivery_id": d.delivery_id,
                "webhook_id": d.webhook_id,
                "user_id": d.user_id,
                "url": d.url,
                "event": d.event,
                "body": d.body.decode(),
                "headers": d.headers,
                "created_at": d.created_at,
                "attempt": attempt,
            }
            for d, attempt in claimed
        ]
    }
