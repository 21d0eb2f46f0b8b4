"""Topic names and the JSON envelopes that travel on them.

Every value carries ``schema`` (``<kind>/<version>``) so consumers can refuse, or upgrade, what
they do not understand. Offers are keyed by offer id on a compacted topic; a ``None`` value
(tombstone) means the offer disappeared. Decoding returns typed objects or raises ``ValueError``
with a message that names what is wrong, so a bad record can go to its dead-letter topic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from gpubroker.core.offer import OFFER_SCHEMA_VERSION, Offer

OFFERS = "gpubroker.offers"
PRICE_UPDATES = "gpubroker.price-updates"
PROVIDER_EVENTS = "gpubroker.provider-events"
WEBHOOKS = "gpubroker.webhooks"
PRICE_ALERTS = "gpubroker.price-alerts"
TOPICS = (OFFERS, PRICE_UPDATES, PROVIDER_EVENTS, WEBHOOKS, PRICE_ALERTS)


def dead_letter_topic(topic: str) -> str:
    """``gpubroker.offers`` -> ``gpubroker.dlq.offers``."""
    return "gpubroker.dlq." + topic.removeprefix("gpubroker.")


OFFER_SCHEMA = f"offer/{OFFER_SCHEMA_VERSION}"
PRICE_UPDATE_SCHEMA = "price-update/1"
PROVIDER_EVENT_SCHEMA = "provider-event/1"


def utcnow() -> datetime:
    return datetime.now(UTC)


def encode_offer(offer: Offer) -> bytes:
    return orjson.dumps({"schema": OFFER_SCHEMA, "offer": offer.to_json()})


def decode_offer(value: bytes) -> Offer:
    envelope = _load(value, OFFER_SCHEMA)
    return Offer.model_validate(envelope["offer"])


@dataclass(frozen=True)
class PriceUpdate:
    """An offer's price moved between two polls."""

    provider: str
    offer_id: str
    gpu_type: str | None
    region: str
    old_price: Decimal
    new_price: Decimal
    at: datetime

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "schema": PRICE_UPDATE_SCHEMA,
                "provider": self.provider,
                "offer_id": self.offer_id,
                "gpu_type": self.gpu_type,
                "region": self.region,
                "old_price": str(self.old_price),
                "new_price": str(self.new_price),
                "at": self.at.isoformat(),
            }
        )

    @classmethod
    def decode(cls, value: bytes) -> PriceUpdate:
        data = _load(value, PRICE_UPDATE_SCHEMA)
        try:
            return cls(
                provider=data["provider"],
                offer_id=data["offer_id"],
                gpu_type=data.get("gpu_type"),
                region=data["region"],
                old_price=Decimal(data["old_price"]),
                new_price=Decimal(data["new_price"]),
                at=datetime.fromisoformat(data["at"]),
            )
        except (KeyError, ArithmeticError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed price update: {exc!r}") from None


@dataclass(frozen=True)
class ProviderEvent:
    """Something happened to a provider: a poll finished or failed, its circuit moved, ..."""

    provider: str
    event_type: str
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "schema": PROVIDER_EVENT_SCHEMA,
                "provider": self.provider,
                "event_type": self.event_type,
                "at": self.at.isoformat(),
                "data": self.data,
            }
        )

    @classmethod
    def decode(cls, value: bytes) -> ProviderEvent:
        data = _load(value, PROVIDER_EVENT_SCHEMA)
        try:
            return cls(
                provider=data["provider"],
                event_type=data["event_type"],
                at=datetime.fromisoformat(data["at"]),
                data=dict(data.get("data") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed provider event: {exc!r}") from None


def _load(value: bytes, schema: str) -> dict[str, Any]:
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    if data.get("schema") != schema:
        raise ValueError(f"schema {data.get('schema')!r}, expected {schema!r}")
    return data
