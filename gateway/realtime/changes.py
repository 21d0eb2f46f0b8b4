"""Turning what the ingest applies into hub events: price and availability changes, offers
coming and going, provider health, and price alerts (the market's, and users' own).

Only news is published: re-reading the bus from the beginning at start (to rebuild the
catalogue) would otherwise replay history as if it were happening now, so nothing is published
until the ingest has consumed its backlog (``live``). Subscribers of a freshly started instance
therefore see changes from then on; earlier ones are retained by the instances that were up.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from gpubroker.core import events
from gpubroker.core.bus import Record
from gpubroker.core.offer import Offer
from gpubroker.core.price_changes import offer_price_changed
from gpubroker.core.prices import price_number
from gpubroker.gateway.catalog.index import OfferIndex
from gpubroker.gateway.catalog.rows import Row
from gpubroker.gateway.catalog.store import Catalog, ProviderState
from gpubroker.gateway.realtime.hub import Event, Hub

STREAM_CODES = {events.OFFERS: "o", events.PROVIDER_EVENTS: "p", events.PRICE_ALERTS: "a"}


class ChangeFeed:
    """Publishes to the hub what each record the ingest applied means to subscribers."""

    def __init__(self, hub: Hub, catalog: Catalog) -> None:
        self._hub = hub
        self._catalog = catalog

    @property
    def live(self) -> bool:
        """Whether changes are published (the backlog is consumed); the hub's ``live``."""
        return self._hub.live.is_set()

    @live.setter
    def live(self, value: bool) -> None:
        if value:
            self._hub.live.set()
        else:
            self._hub.live.clear()

    def _publishing(self, record: Record) -> bool:
        """Whether the feed is live; a record consumed before is one the hub holds no event for."""
        if not self.live:
            self._hub.not_retained(_stream(record), record.offset)
        return self.live

    def offer(self, record: Record, previous: Offer | None, offer: Offer | None) -> None:
        if not self._publishing(record):
            return
        kind = _kind(previous, offer)
        if kind is None:
            return
        stream = _stream(record)
        subject = offer if offer is not None else previous
        assert subject is not None
        vocabulary = self._catalog.vocabulary
        if offer is not None:  # rendered and encoded once, when the catalogue took it
            rendered, row = self._catalog.rendered[record.key], self._catalog.rows[record.key]
        else:  # withdrawn: the catalogue no longer holds it
            rendered, row = subject.to_bytes(), Row.of(subject, vocabulary)
        payload: dict[str, Any] = {
            "type": kind,
            "offer_id": subject.id,
            "provider": subject.provider,
            "gpu_type": subject.gpu_type,
            "region": subject.region,
            "price_per_hour": _price(offer),
            "previous_price_per_hour": _price(previous),
            "availability": None if offer is None else offer.availability_status.value,
            "offer": None if offer is None else orjson.Fragment(rendered),
            "at": datetime.now(UTC).isoformat(),
        }
        index = OfferIndex.of_one(subject, rendered, row, vocabulary)
        event_id = self._hub.next_id(stream, record.offset)
        self._hub.publish(Event(kind, orjson.dumps(payload), stream, record.offset, event_id, subject.provider, index))

    def provider(self, record: Record, state: ProviderState) -> None:
        if not self._publishing(record):
            return
        stream = _stream(record)
        payload = {"type": "health_status", **state.to_json(datetime.now(UTC))}
        event_id = self._hub.next_id(stream, record.offset)
        self._hub.publish(Event("health_status", orjson.dumps(payload), stream, record.offset, event_id, state.name))

    def alert(self, record: Record, alert: events.PriceAlert) -> None:
        """A ``rule`` alert goes to its owner alone (as ``alert``); the market's go to everyone
        who asked for them (as ``price_alert``)."""
        if not self._publishing(record):
            return
        kind = "alert" if alert.user_id is not None else "price_alert"
        offer = self._catalog.offers.get(alert.offer_id)
        index, rendered = None, None
        if offer is not None:
            rendered = self._catalog.rendered[alert.offer_id]
            index = OfferIndex.of_one(offer, rendered, self._catalog.rows[alert.offer_id], self._catalog.vocabulary)
        payload = alert.to_json()
        del payload["user_id"]
        payload = {"type": kind, **payload, "offer": None if rendered is None else orjson.Fragment(rendered)}
        stream = _stream(record)
        event_id = self._hub.next_id(stream, record.offset)
        self._hub.publish(
            Event(kind, orjson.dumps(payload), stream, record.offset, event_id, alert.provider, index, alert.user_id)
        )

    def notice(self, record: Record, notice: events.AccountNotice) -> None:
        """News about a user's own account (a webhook disabled) reaches them alone, on their
        ``alerts`` channel, as an ``alert`` whose ``kind`` says what happened."""
        if not self._publishing(record):
            return
        payload = {"type": "alert", "kind": notice.kind, "at": notice.at.isoformat(), **notice.data}
        stream = _stream(record)
        event_id = self._hub.next_id(stream, record.offset)
        self._hub.publish(
            Event("alert", orjson.dumps(payload), stream, record.offset, event_id, "", owner=notice.user_id)
        )


def _kind(previous: Offer | None, offer: Offer | None) -> str | None:
    if previous is None:
        return None if offer is None else "offer_added"
    if offer is None:
        return "offer_removed"
    if offer_price_changed(previous, offer):
        return "price_update"
    if previous.availability_status != offer.availability_status:
        return "availability"
    return None  # nothing a subscriber watches (for example only the time of the last poll)


def _price(offer: Offer | None) -> orjson.Fragment | None:
    return None if offer is None or offer.price_per_hour is None else price_number(offer.price_per_hour)


def _stream(record: Record) -> str:
    return f"{STREAM_CODES.get(record.topic, 'x')}{record.partition}"
