"""Topic names and the JSON envelopes that travel on them.

Every value carries ``schema`` (``<kind>/<version>``) so consumers can refuse, or upgrade, what
they do not understand. Prices are written in the one wire form of ``core.prices``: a JSON
string such as ``"20"`` or ``"0.000001"`` in price updates and alerts, a JSON number with the
same digits in offers; decoders also accept the exponent forms older records may hold.

Offers are keyed by offer id on a compacted topic; a ``None`` value (tombstone) means the
offer disappeared. Decoding returns typed objects or raises ``ValueError``
with a message that names what is wrong, so a bad record can go to its dead-letter topic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from gpubroker.core.offer import OFFER_SCHEMA_VERSION, Offer
from gpubroker.core.prices import parse_price, price_text

OFFERS = "gpubroker.offers"
PRICE_UPDATES = "gpubroker.price-updates"
PROVIDER_EVENTS = "gpubroker.provider-events"
WEBHOOKS = "gpubroker.webhooks"
PRICE_ALERTS = "gpubroker.price-alerts"
PRICE_AGGREGATES = "gpubroker.price-aggregates"
TOPICS = (OFFERS, PRICE_UPDATES, PROVIDER_EVENTS, WEBHOOKS, PRICE_ALERTS, PRICE_AGGREGATES)


def dead_letter_topic(topic: str) -> str:
    """``gpubroker.offers`` -> ``gpubroker.dlq.offers``."""
    return "gpubroker.dlq." + topic.removeprefix("gpubroker.")


OFFER_SCHEMA = f"offer/{OFFER_SCHEMA_VERSION}"
PRICE_UPDATE_SCHEMA = "price-update/1"
PROVIDER_EVENT_SCHEMA = "provider-event/1"
PRICE_ALERT_SCHEMA = "price-alert/1"
PRICE_AGGREGATE_SCHEMA = "price-aggregate/1"
WEBHOOK_DELIVERY_SCHEMA = "webhook-delivery/1"
ACCOUNT_NOTICE_SCHEMA = "account-notice/1"

PROVIDER_DEGRADED = "provider.degraded"
"""A provider event: the plugin-health checks failed several runs in a row."""
PROVIDER_RECOVERED = "provider.recovered"
"""A provider event: the plugin-health checks pass again after ``provider.degraded``."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def encode_offer(offer: Offer) -> bytes:
    return orjson.dumps({"schema": OFFER_SCHEMA, "offer": orjson.Fragment(offer.to_bytes())})


def decode_offer(value: bytes) -> Offer:
    """An offer from its envelope. Fields this release does not know are dropped, not refused:
    ``offer/1`` grows only by optional fields, so a consumer still running the previous release
    during a rolling upgrade keeps reading what a newer worker writes."""
    envelope = load_envelope(value, OFFER_SCHEMA)
    data = envelope.get("offer")
    if not isinstance(data, dict):
        raise ValueError("the offer envelope holds no offer object")
    return Offer.model_validate({name: item for name, item in data.items() if name in Offer.model_fields})


@dataclass(frozen=True)
class PriceUpdate:
    """An offer's price moved between two polls.

    ``gpu_count`` and ``country`` (ISO 3166-1 alpha-2) are the offer's, so that the stream
    analytics can compare per-GPU prices and group by continent without the offer itself; both
    are optional (``null``) for records written before they were added.
    """

    provider: str
    offer_id: str
    gpu_type: str | None
    region: str
    old_price: Decimal
    new_price: Decimal
    at: datetime
    gpu_count: int | None = None
    country: str | None = None

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "schema": PRICE_UPDATE_SCHEMA,
                "provider": self.provider,
                "offer_id": self.offer_id,
                "gpu_type": self.gpu_type,
                "region": self.region,
                "old_price": price_text(self.old_price),
                "new_price": price_text(self.new_price),
                "at": self.at.isoformat(),
                "gpu_count": self.gpu_count,
                "country": self.country,
            }
        )

    @classmethod
    def decode(cls, value: bytes) -> PriceUpdate:
        data = load_envelope(value, PRICE_UPDATE_SCHEMA)
        try:
            gpu_count, country = data.get("gpu_count"), data.get("country")
            return cls(
                provider=data["provider"],
                offer_id=data["offer_id"],
                gpu_type=data.get("gpu_type"),
                region=data["region"],
                old_price=parse_price(data["old_price"]),
                new_price=parse_price(data["new_price"]),
                at=datetime.fromisoformat(data["at"]),
                gpu_count=None if gpu_count is None else _positive_int(gpu_count, "gpu_count"),
                country=None if country is None else str(country),
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
        data = load_envelope(value, PROVIDER_EVENT_SCHEMA)
        try:
            return cls(
                provider=data["provider"],
                event_type=data["event_type"],
                at=datetime.fromisoformat(data["at"]),
                data=dict(data.get("data") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed provider event: {exc!r}") from None


@dataclass(frozen=True)
class PriceAlert:
    """Something about an offer's price worth telling people.

    ``kind`` is ``significant_change`` or ``anomaly`` for the market-wide alerts the stream
    analytics raise (``detail`` says why: the change in percent, the z-score), or ``rule`` for
    one user's own alert rule firing (``user_id`` and ``alert_id`` say whose; nobody else sees
    it).
    """

    kind: str
    provider: str
    offer_id: str
    gpu_type: str | None
    region: str
    old_price: Decimal | None
    new_price: Decimal
    at: datetime
    detail: dict[str, Any] = field(default_factory=dict)
    user_id: int | None = None
    alert_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "provider": self.provider,
            "offer_id": self.offer_id,
            "gpu_type": self.gpu_type,
            "region": self.region,
            "old_price": None if self.old_price is None else price_text(self.old_price),
            "new_price": price_text(self.new_price),
            "at": self.at.isoformat(),
            "detail": self.detail,
            "user_id": self.user_id,
            "alert_id": self.alert_id,
        }

    def encode(self) -> bytes:
        return orjson.dumps({"schema": PRICE_ALERT_SCHEMA, **self.to_json()})

    @classmethod
    def decode(cls, value: bytes) -> PriceAlert:
        data = load_envelope(value, PRICE_ALERT_SCHEMA)
        try:
            old_price = data.get("old_price")
            user_id, alert_id = data.get("user_id"), data.get("alert_id")
            return cls(
                kind=str(data["kind"]),
                provider=str(data["provider"]),
                offer_id=str(data["offer_id"]),
                gpu_type=data.get("gpu_type"),
                region=str(data.get("region") or ""),
                old_price=None if old_price is None else parse_price(old_price),
                new_price=parse_price(data["new_price"]),
                at=datetime.fromisoformat(data["at"]),
                detail=dict(data.get("detail") or {}),
                user_id=None if user_id is None else int(user_id),
                alert_id=None if alert_id is None else int(alert_id),
            )
        except (KeyError, ArithmeticError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed price alert: {exc!r}") from None


@dataclass(frozen=True)
class PriceAggregate:
    """The market over one closed event-time window, from the stream analytics.

    For one GPU type, over every continent (``continent`` is ``None``) or one (``UNKNOWN_CONTINENT``
    for the updates of offers whose country is not known), the count of
    price updates whose ``at`` fell in ``[window_start, window_end)`` and the lowest, mean and
    highest per-GPU price among them (USD per GPU-hour, six decimals). Published on the
    compacted ``gpubroker.price-aggregates`` keyed by ``key``, so the topic keeps the latest
    window of every GPU type and continent.
    """

    gpu_type: str
    continent: str | None
    window_start: datetime
    window_end: datetime
    count: int
    min: Decimal
    mean: Decimal
    max: Decimal

    @property
    def key(self) -> str:
        return aggregate_key(self.gpu_type, self.continent)

    def to_json(self) -> dict[str, Any]:
        return {
            "gpu_type": self.gpu_type,
            "continent": self.continent,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "count": self.count,
            "min": price_text(self.min),
            "mean": price_text(self.mean),
            "max": price_text(self.max),
        }

    def encode(self) -> bytes:
        return orjson.dumps({"schema": PRICE_AGGREGATE_SCHEMA, **self.to_json()})

    @classmethod
    def decode(cls, value: bytes) -> PriceAggregate:
        data = load_envelope(value, PRICE_AGGREGATE_SCHEMA)
        try:
            continent = data.get("continent")
            aggregate = cls(
                gpu_type=str(data["gpu_type"]),
                continent=None if continent is None else str(continent),
                window_start=_aware(data["window_start"], "window_start"),
                window_end=_aware(data["window_end"], "window_end"),
                count=_positive_int(data["count"], "count"),
                min=parse_price(data["min"]),
                mean=parse_price(data["mean"]),
                max=parse_price(data["max"]),
            )
        except (KeyError, ArithmeticError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed price aggregate: {exc!r}") from None
        if not aggregate.window_start < aggregate.window_end:
            raise ValueError("malformed price aggregate: window_start must be before window_end")
        return aggregate


UNKNOWN_CONTINENT = "unknown"


def aggregate_key(gpu_type: str, continent: str | None) -> str:
    """``H100|europe``, or ``H100|*`` for every continent: the aggregates' record key."""
    return f"{gpu_type}|{continent or '*'}"


@dataclass(frozen=True)
class WebhookDelivery:
    """One signed HTTP POST for a delivery service to make, exactly as it is to be sent.

    ``delivery_id`` is the same every time the event behind it is handled, so a delivery made
    twice (at-least-once) can be recognised by the service and by the receiver.
    """

    delivery_id: str
    webhook_id: int
    user_id: int
    url: str
    event: str
    body: bytes
    headers: dict[str, str]
    created_at: datetime

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "schema": WEBHOOK_DELIVERY_SCHEMA,
                "delivery_id": self.delivery_id,
                "webhook_id": self.webhook_id,
                "user_id": self.user_id,
                "url": self.url,
                "event": self.event,
                "body": self.body.decode(),
                "headers": self.headers,
                "created_at": self.created_at.isoformat(),
            }
        )

    @classmethod
    def decode(cls, value: bytes) -> WebhookDelivery:
        data = load_envelope(value, WEBHOOK_DELIVERY_SCHEMA)
        try:
            return cls(
                delivery_id=str(data["delivery_id"]),
                webhook_id=int(data["webhook_id"]),
                user_id=int(data["user_id"]),
                url=str(data["url"]),
                event=str(data["event"]),
                body=str(data["body"]).encode(),
                headers={str(k): str(v) for k, v in dict(data["headers"]).items()},
                created_at=datetime.fromisoformat(data["created_at"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed webhook delivery: {exc!r}") from None


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return value


def _aware(value: Any, name: str) -> datetime:
    at = datetime.fromisoformat(str(value))
    if at.tzinfo is None:
        raise ValueError(f"{name} must carry a timezone")
    return at


@dataclass(frozen=True)
class AccountNotice:
    """News for one user about their own account (``kind``: ``webhook.disabled``), carried on
    ``gpubroker.price-alerts`` beside their alert rules firing and shown on their ``alerts``
    channel the same way: to them alone."""

    user_id: int
    kind: str
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "user_id": self.user_id, "at": self.at.isoformat(), "data": self.data}

    def encode(self) -> bytes:
        return orjson.dumps({"schema": ACCOUNT_NOTICE_SCHEMA, **self.to_json()})

    @classmethod
    def decode(cls, value: bytes) -> AccountNotice:
        data = load_envelope(value, ACCOUNT_NOTICE_SCHEMA)
        try:
            return cls(
                user_id=int(data["user_id"]),
                kind=str(data["kind"]),
                at=datetime.fromisoformat(data["at"]),
                data=dict(data.get("data") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed account notice: {exc!r}") from None


def decode_alert(value: bytes) -> PriceAlert | AccountNotice:
    """A record of ``gpubroker.price-alerts``: a price alert, or a notice to one user."""
    try:
        schema = orjson.loads(value).get("schema")
    except (orjson.JSONDecodeError, AttributeError):
        schema = None
    return AccountNotice.decode(value) if schema == ACCOUNT_NOTICE_SCHEMA else PriceAlert.decode(value)


def load_envelope(value: bytes, schema: str) -> dict[str, Any]:
    """A record's JSON object, if it is one and carries ``schema``; else a ``ValueError``."""
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    if data.get("schema") != schema:
        raise ValueError(f"schema {data.get('schema')!r}, expected {schema!r}")
    return data
