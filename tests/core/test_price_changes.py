"""The one definition of a price change, shared by the worker's diff and the gateway's stream."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from gpubroker.core.price_changes import price_changed

prices = st.none() | st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(10_000), places=6)


@given(prices, prices)
def test_a_change_is_a_move_between_two_known_prices(old: Decimal | None, new: Decimal | None) -> None:
    assert price_changed(old, new) == (old is not None and new is not None and old != new)


@given(prices)
def test_the_rule_is_symmetric_and_a_price_never_changes_into_itself(price: Decimal | None) -> None:
    assert not price_changed(price, price)
    assert price_changed(price, Decimal(1)) == price_changed(Decimal(1), price)


def test_a_price_appearing_or_disappearing_is_not_a_price_move() -> None:
    assert not price_changed(None, Decimal("2.5"))
    assert not price_changed(Decimal("2.5"), None)
    assert price_changed(Decimal("2.5"), Decimal("2.50001"))
    assert not price_changed(Decimal("2.5"), Decimal("2.500"))  # the same amount, written differently
