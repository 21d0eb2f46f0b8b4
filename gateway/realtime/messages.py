"""What the WebSocket and the Server-Sent Events streams carry, as models.

The hub renders each event's JSON once, by hand, for speed (``realtime/changes.py``,
``realtime/market.py``); these models are that JSON's contract. The AsyncAPI document
(``gateway/asyncapi.py``) is generated from them, and the tests check that what the feed really
renders validates against them, so the two cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gpubroker.core.offer import Offer
from gpubroker.core.prices import Price
from gpubroker.gateway.market import MarketWindow
from gpubroker.gateway.schemas import ProviderFreshness

# --- events: the same payload on both transports ----------------------------------------------


class OfferChange(BaseModel):
    """An offer's price or availability changed, or the offer came or went."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["price_update", "availability", "offer_added", "offer_removed"]
    offer_id: str
    provider: str
    gpu_type: str | None
    region: str
    price_per_hour: Price | None = Field(description="USD per hour now; null when withdrawn or not quoted.")
    previous_price_per_hour: Price | None = Field(description="USD per hour before; null when it is new.")
    availability: str | None = Field(description="The offer's availability now; null when withdrawn.")
    offer: Offer | None = Field(description="The whole offer as the list serves it; null when withdrawn.")
    at: datetime


class HealthStatus(ProviderFreshness):
    """A provider's state changed: a poll finished or failed, its circuit moved, it went stale."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["health_status"]


class MarketAlert(BaseModel):
    """A price worth telling people about: the market's ``significant_change`` or ``anomaly``
    (event ``price_alert``, to whoever subscribed), or one of the caller's own alert rules firing
    (event ``alert``, kind ``rule``, to them alone)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["price_alert", "alert"]
    kind: Literal["significant_change", "anomaly", "rule"]
    provider: str
    offer_id: str
    gpu_type: str | None
    region: str
    old_price: str | None = Field(description="USD per hour before, as exact decimal digits.")
    new_price: str = Field(description="USD per hour now, as exact decimal digits.")
    at: datetime
    detail: dict[str, Any] = Field(
        description="Why: the change in percent (``change_pct``), the z-score (``z_score``), the rule's threshold."
    )
    alert_id: int | None = Field(description="The caller's alert rule that fired (kind ``rule``).")
    offer: Offer | None = Field(description="The offer as the list serves it; null when no longer listed.")


class AccountNotice(BaseModel):
    """News about the caller's own account, on their ``alerts`` channel: for example
    ``webhook.disabled`` when one of their webhooks failed every delivery for a day."""

    model_config = ConfigDict(extra="allow")

    type: Literal["alert"]
    kind: str = Field(description="What happened, e.g. ``webhook.disabled``; more fields say to what.")
    at: datetime


class MarketEvent(MarketWindow):
    """A 1-minute window of the market closed for one GPU type (and continent)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["market"]
    window: Literal["1m"]


class Gap(BaseModel):
    """The subscriber was too slow: this many of its oldest queued events were dropped."""

    model_config = ConfigDict(extra="forbid")

    dropped: int = Field(ge=1)


EVENTS: dict[str, type[BaseModel]] = {
    "price_update": OfferChange,
    "availability": OfferChange,
    "offer_added": OfferChange,
    "offer_removed": OfferChange,
    "health_status": HealthStatus,
    "price_alert": MarketAlert,
    "alert": MarketAlert,
    "market": MarketEvent,
}
"""Each event type and the model of its payload (``alert`` may also be an ``AccountNotice``)."""

# --- the WebSocket's own messages --------------------------------------------------------------


class Subscribe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["subscribe", "unsubscribe"]
    channels: list[str] = Field(
        max_length=100,
        description="price_updates, availability, health_status, price_alerts, alerts, market, "
        "provider:<name>, gpu:<type>, region:<name>",
    )


class Ping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["ping"]


class ConnectionEstablished(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["connection_established"]
    plan: str = Field(description="The caller's plan, or anonymous.")
    channels: list[str] = Field(description="The channels one may subscribe to.")


class Subscribed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["subscribed", "unsubscribed"]
    channels: list[str]


class Pong(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["pong"]


class SocketError(BaseModel):
    """A message the server could not act on; the connection stays open."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["error"]
    message: str


class SocketGap(Gap):
    type: Literal["gap"]


class SocketEvent(BaseModel):
    """An event, wrapped: its id (resumable position), type and payload."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["event"]
    id: str = Field(description="The event's position on the bus; the same on every instance.")
    event: str = Field(description="The event type: its payload's model is named in the channel's messages.")
    data: dict[str, Any]
