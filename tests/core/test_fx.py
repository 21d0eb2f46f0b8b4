from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpubroker.core import fx
from gpubroker.core.errors import ConfigurationError


def test_bundled_table_is_dated_and_converts() -> None:
    table = fx.rates()
    assert table.as_of >= date(2026, 1, 1)
    assert table.to_usd(Decimal(10), "usd") == Decimal(10)
    assert table.to_usd(Decimal(10), "EUR") == Decimal(10) * table.usd_per_unit["EUR"]


def test_unknown_currency_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match="no exchange rate for 'XYZ'"):
        fx.rates().to_usd(Decimal(1), "XYZ")


@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("10000"), places=2))
def test_conversion_is_linear(amount: Decimal) -> None:
    table = fx.RateTable.from_mapping({"as_of": "2026-11-25", "usd_per_unit": {"EUR": "1.25"}})
    assert table.to_usd(amount * 2, "EUR") == 2 * table.to_usd(amount, "EUR")


def test_configured_table_replaces_the_bundled_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUBROKER_FX_RATES", '{"as_of": "2026-12-01", "usd_per_unit": {"eur": "2"}}')
    fx.configured_rates.cache_clear()
    try:
        assert fx.to_usd(Decimal(3), "EUR") == Decimal(6)
        monkeypatch.setenv("GPUBROKER_FX_RATES", '{"usd_per_unit": {}}')
        fx.configured_rates.cache_clear()
        with pytest.raises(ConfigurationError, match="GPUBROKER_FX_RATES"):
            fx.rates()
    finally:
        monkeypatch.delenv("GPUBROKER_FX_RATES")
        fx.configured_rates.cache_clear()
