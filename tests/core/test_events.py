from datetime import UTC, datetime
from decimal import Decimal

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
