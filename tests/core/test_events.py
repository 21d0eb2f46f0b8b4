from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest

from gpubroker.core import events
from tests.core.test_offer import make


def test_offer_envelope_round_trip() -> None:
    offer = make()
    assert events.decode_offer(events.encode_offer(offer)) == offer


def test_price_update_round_trip() -> None:
    update = events.PriceUpdate("acme", "id", "H100", "us", Decimal("1.5"), Decimal("1.25"), datetime.now(UTC))
    assert events.PriceUpdate.decode(update.encode()) == update


def test_provider_event_round_trip() -> None:
    event = events.ProviderEvent("acme", "poll.failed", datetime.now(UTC), {"reason": "HTTP 503"})
    assert events.ProviderEvent.decode(event.encode()) == event


@pytest.mark.parametrize(
    "value", [b"not json", b"[]", b'{"schema": "offer/99"}', b'{"schema": "offer/1", "offer": {}}']
)
def test_bad_offer_records_raise_value_error(value: bytes) -> None:
    with pytest.raises(ValueError):
        events.decode_offer(value)


def test_dead_letter_topic_names() -> None:
    assert events.dead_letter_topic(events.OFFERS) == "gpubroker.dlq.offers"
    assert events.dead_letter_topic(events.PRICE_UPDATES) == "gpubroker.dlq.price-updates"


def test_price_alert_round_trip() -> None:
    market = events.PriceAlert(
        "significant_change", "acme", "id", "H100", "us", Decimal("2"), Decimal("1.5"), datetime.now(UTC), {"pct": -25}
    )
    rule = events.PriceAlert("rule", "acme", "id", None, "us", None, Decimal("1.5"), datetime.now(UTC), {}, 7, 3)
    for alert in (market, rule):
        assert events.PriceAlert.decode(alert.encode()) == alert


def test_webhook_delivery_round_trip() -> None:
    delivery = events.WebhookDelivery(
        "dlv_1", 3, 7, "https://example.com/hook", "price.alert", b'{"a":1}', {"X-A": "b"}, datetime.now(UTC)
    )
    assert events.WebhookDelivery.decode(delivery.encode()) == delivery


@pytest.mark.parametrize(
    "value",
    [
        b'{"schema": "price-alert/1"}',
        b'{"schema": "price-alert/1", "kind": "rule", "provider": "a", "offer_id": "b", '
        b'"new_price": "x", "at": "2026-01-01T00:00:00+00:00"}',
    ],
)
def test_bad_price_alerts_raise_value_error(value: bytes) -> None:
    with pytest.raises(ValueError):
        events.PriceAlert.decode(value)


def test_an_offer_from_a_newer_release_is_read_without_its_new_fields() -> None:
    offer = make()
    envelope = orjson.loads(events.encode_offer(offer))
    envelope["offer"]["a_field_from_the_future"] = {"x": 1}
    assert events.decode_offer(orjson.dumps(envelope)) == offer
