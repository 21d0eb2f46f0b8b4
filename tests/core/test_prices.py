"""The one wire form of a price: plain decimal digits, exact, everywhere a price is written."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpubroker.core import events
from gpubroker.core.offer import Availability, Offer, offer_id
from gpubroker.core.prices import MAX_PRICE, PRICE_QUANTUM, parse_price, price_text, quantize

WIRE = re.compile(r"^-?\d+(\.\d+)?$")
AT = datetime(2026, 12, 1, tzinfo=UTC)

prices = st.one_of(
    st.decimals(min_value=PRICE_QUANTUM, max_value=MAX_PRICE, places=6, allow_nan=False, allow_infinity=False),
    st.integers(min_value=1, max_value=99_999_999).map(Decimal),  # whole dollars: 10, 20, 100, ...
    st.integers(min_value=1, max_value=7).map(lambda power: Decimal(10) ** power),  # round tens and hundreds
    st.sampled_from([PRICE_QUANTUM, MAX_PRICE, Decimal("0.0001"), Decimal("2.5")]),
)


@pytest.mark.parametrize(
    "value, text",
    [
        (Decimal("20"), "20"),
        (Decimal("2E+1"), "20"),
        (Decimal("10.000000"), "10"),
        (Decimal("100"), "100"),
        (Decimal("2.50"), "2.5"),
        (Decimal("0.0001"), "0.0001"),
        (Decimal("0.000001"), "0.000001"),
        (Decimal("1E-6"), "0.000001"),
        (MAX_PRICE, "99999999.999999"),
        (Decimal("-3.10"), "-3.1"),
        (Decimal("-0"), "0"),
    ],
)
def test_wire_form_has_no_exponent_and_no_trailing_zeros(value: Decimal, text: str) -> None:
    assert price_text(value) == text


@given(prices)
def test_encode_then_decode_gives_the_same_value(value: Decimal) -> None:
    text = price_text(quantize(value))
    assert WIRE.match(text), text
    assert parse_price(text) == value


@given(prices)
def test_every_envelope_writes_prices_in_the_wire_form(value: Decimal) -> None:
    update = events.PriceUpdate("acme", "o-1", "H100", "us-east", value, value + 1, AT)
    alert = events.PriceAlert("significant_change", "acme", "o-1", "H100", "us-east", value, value, AT)
    for encoded, decode in ((update.encode(), events.PriceUpdate.decode), (alert.encode(), events.PriceAlert.decode)):
        data = orjson.loads(encoded)
        assert WIRE.match(data["old_price"]) and WIRE.match(data["new_price"]), encoded
        assert decode(encoded).old_price == value
    offer = make_offer(value)
    text = events.encode_offer(offer).decode()
    number = re.search(r'"price_per_hour":([^,}]+)', text)
    assert number is not None and WIRE.match(number.group(1)), text
    assert events.decode_offer(text.encode()).price_per_hour == value


def test_decoders_accept_what_older_records_hold() -> None:
    old = b'{"schema": "price-update/1", "provider": "acme", "offer_id": "o-1", "gpu_type": null, "region": "eu",'
    old += b' "old_price": "2E+1", "new_price": "1E+1", "at": "2026-12-01T00:00:00+00:00"}'
    update = events.PriceUpdate.decode(old)
    assert (update.old_price, update.new_price) == (Decimal(20), Decimal(10))
    assert price_text(update.old_price) == "20"


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-inf", "twenty", "", True, None, [1]])
def test_what_is_not_a_price_is_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_price(bad)


def test_offers_refuse_a_price_the_database_cannot_hold() -> None:
    with pytest.raises(ValueError):
        make_offer(MAX_PRICE + 1)


def make_offer(price: Decimal) -> Offer:
    return Offer(
        id=offer_id("acme", "1"),
        provider="acme",
        provider_offer_id="1",
        name="1x H100",
        gpu_name="H100",
        gpu_type="H100",
        gpu_vendor="nvidia",
        gpu_count=1,
        gpu_memory_gb=80,
        price_per_hour=price,
        availability_status=Availability.AVAILABLE,
        region="us-east",
        last_updated=AT,
    )
