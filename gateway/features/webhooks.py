"""``/api/v2/webhooks``: where an Enterprise user's events are delivered, signed with HMAC.

A target must be public (``core.webtargets``): parsed strictly, its name resolved and every
address it stands for checked now, and again before each delivery. The signing secret is made
here, shown once and kept in the vault; the row and the secret are stored both or neither. Each delivery carries
``X-GPUBROKER-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` (see
``realtime.deliveries``); a receiver recomputes it with the secret and rejects old timestamps,
which defeats replays.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated, Any, Literal

from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import ConfigDict, Field, field_validator

from gpubroker.core import webtargets
from gpubroker.core.errors import VaultUnavailable
from gpubroker.gateway import db, errors
from gpubroker.gateway.errors import ApiError
from gpubroker.gateway.identity import audit
from gpubroker.gateway.identity.access import Requires, caller
from gpubroker.gateway.identity.plans import Permission
from gpubroker.gateway.models import Webhook
from gpubroker.gateway.realtime import delivery_log
from gpubroker.gateway.runtime import current
from gpubroker.gateway.schemas import Error

router = Router(tags=["webhooks"], auth=Requires(Permission.WEBHOOKS))
EVENTS = ("price.alert", "price.change", "provider.health")
MAX_WEBHOOKS = 20


class WebhookBody(Schema):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, Field(min_length=8, max_length=500, description="A public http(s) address.")]
    events: Annotated[list[Literal["price.alert", "price.change", "provider.health"]], Field(min_length=1)] = [
        "price.alert"
    ]

    @field_validator("url")
    @classmethod
    def _well_formed(cls, url: str) -> str:
        webtargets.parse(url)  # TargetRefused is a ValueError: a 422 naming the field
        return url


class WebhookOut(Schema):
    id: int
    url: str
    events: list[str]
    active: bool
    created_at: datetime
    disabled_reason: str | None = Field(default=None, description="Why the platform disabled it, if it did.")


class AttemptOut(Schema):
    number: int
    at: datetime
    status_code: int | None
    error: str | None
    latency_ms: float | None
    outcome: str = Field(description="delivered, retry, failed (a 4xx that is final) or refused (a private target).")


class DeliveryOut(Schema):
    delivery_id: str = Field(description="Also the X-GPUBROKER-Delivery header the receiver got.")
    event: str
    status: str = Field(description="pending, delivered, failed, refused, exhausted or cancelled.")
    created_at: datetime
    next_attempt_at: datetime | None
    attempts: list[AttemptOut]


class NewWebhook(WebhookOut):
    secret: str = Field(description="Shown once: the HMAC key that signs deliveries.")


@router.post(
    "", response={201: NewWebhook, 401: Error, 409: Error, 422: Error, 503: Error}, summary="Register a webhook"
)
async def create_webhook(request: HttpRequest, body: WebhookBody) -> Status[dict[str, Any]]:
    """Register a public https address for signed event deliveries; the signing secret is shown
    once."""
    identity = caller(request)
    runtime = current()
    target = webtargets.parse(body.url)
    if not runtime.settings.embedded and target.scheme != "https":
        raise ApiError(422, "url", "webhooks are delivered over https only")
    try:
        await webtargets.check(target, runtime.resolver, runtime.settings.webhook_allowed_networks)
    except webtargets.TargetRefused as exc:
        raise ApiError(422, "url", str(exc)) from None
    if await Webhook.objects.filter(user_id=identity.user_id, active=True).acount() >= MAX_WEBHOOKS:
        raise ApiError(409, None, f"at most {MAX_WEBHOOKS} webhooks")
    row = await Webhook.objects.acreate(user_id=identity.user_id, url=body.url, events=sorted(set(body.events)))
    secret = "whsec_" + secrets.token_urlsafe(32)
    try:
        await runtime.vault.write(row.secret_path, {"secret": secret})
    except VaultUnavailable:
        await row.adelete()
        raise errors.unavailable("the secret store") from None
    runtime.notifier.invalidate()
    await audit.record(request, identity.subject, "webhook.create", f"{row.pk} {target.host}")
    return Status(201, {**_json(row), "secret": secret})


@router.get("", response={200: list[WebhookOut], 401: Error}, summary="Your webhooks (never their secrets)")
async def list_webhooks(request: HttpRequest) -> list[dict[str, Any]]:
    """The caller's webhooks (never their secrets)."""
    identity = caller(request)
    return [_json(row) async for row in Webhook.objects.filter(user_id=identity.user_id).order_by("pk")]


@router.get(
    "/{webhook_id}/deliveries",
    response={200: list[DeliveryOut], 401: Error, 404: Error, 422: Error, 503: Error},
    summary="A webhook's latest deliveries, each with every attempt made at it",
)
async def list_deliveries(
    request: HttpRequest, webhook_id: int, limit: int = Query(100, ge=1, le=500, description="At most, newest first.")
) -> list[dict[str, Any]]:
    """The newest deliveries made to one of your webhooks, each with its attempts (time, status,
    error and the next try), so a receiver's outage can be seen and its end confirmed."""
    identity = caller(request)
    assert identity.user_id is not None
    rows = await db.run(delivery_log.for_owner, webhook_id, identity.user_id, limit)
    if rows is None:
        raise ApiError(404, "webhook_id", f"you have no webhook {webhook_id}")
    return rows


@router.delete("/{webhook_id}", response={204: None, 401: Error, 404: Error, 503: Error}, summary="Remove a webhook")
async def delete_webhook(request: HttpRequest, webhook_id: int) -> Status[None]:
    """Remove one of the caller's webhooks and its secret."""
    identity = caller(request)
    row = await Webhook.objects.filter(pk=webhook_id, user_id=identity.user_id).afirst()
    if row is None:
        raise ApiError(404, "webhook_id", f"you have no webhook {webhook_id}")
    try:  # the secret first: a failure leaves the row, so the delete can be retried
        await current().vault.delete(row.secret_path)
    except VaultUnavailable:
        raise errors.unavailable("the secret store") from None
    await row.adelete()
    current().notifier.invalidate()
    await audit.record(request, identity.subject, "webhook.delete", str(webhook_id))
    return Status(204, None)


def _json(row: Webhook) -> dict[str, Any]:
    return {
        "id": row.pk,
        "url": row.url,
        "events": row.events,
        "active": row.active,
        "created_at": row.created_at,
        "disabled_reason": row.disabled_reason,
    }
