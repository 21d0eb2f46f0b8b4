from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpubroker.core import units
from gpubroker.core.offer import Availability

money = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("100000"), places=4)


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False) | st.integers(0, 10**9))
def test_decimal_keeps_the_written_value(value: float) -> None:
    assert units.decimal(value) == Decimal(str(value))


@pytest.mark.parametrize("bad", [None, True, "abc", float("nan"), float("inf"), "", [], {}])
def test_decimal_refuses_what_is_not_a_number(bad: object) -> None:
    with pytest.raises(ValueError, match="not a number"):
        units.decimal(bad)


@given(st.integers(0, 10**9))
def test_cents_to_dollars(cents: int) -> None:
    assert units.dollars_from_cents(cents) * 100 == cents


@given(money, st.integers(1, 64))
def test_per_gpu_to_instance_scales_by_count(price: Decimal, count: int) -> None:
    assert units.per_instance(price, count) / count == price


def test_per_instance_needs_a_gpu() -> None:
    with pytest.raises(ValueError):
        units.per_instance(Decimal(1), 0)


@given(money, st.integers(1, 100_000))
def test_storage_priced_per_gb_month_becomes_hourly(price: Decimal, gb: int) -> None:
    hourly = units.storage_hourly(price, gb)
    assert hourly * units.HOURS_PER_MONTH == pytest.approx(price * gb)
    assert units.monthly_to_hourly(price * gb) == hourly


@given(st.integers(1, 2**20))
def test_memory_units(mib: int) -> None:
    assert units.mib_to_gb(mib) == round(mib / 1024, 1)
    assert units.bytes_to_gb(mib * 1024 * 1024) == units.mib_to_gb(mib)


@pytest.mark.parametrize(
    "signal, expected",
    [
        (True, Availability.AVAILABLE), (False, Availability.UNAVAILABLE),
        (0, Availability.UNAVAILABLE), (1, Availability.LIMITED), (5, Availability.AVAILABLE),
        ("Available", Availability.AVAILABLE), ("scarce", Availability.LIMITED), ("shortage", Availability.UNAVAILABLE),
        ("SOLD-OUT", Availability.UNAVAILABLE), ("Low", Availability.LIMITED), ("in  stock", Availability.AVAILABLE),
    ],
)  # fmt: skip
def test_availability_signals(signal: object, expected: Availability) -> None:
    assert units.availability(signal) == expected


@given(st.integers(-100, 10_000))
def test_availability_is_monotonic_in_free_units(count: int) -> None:
    order = [Availability.UNAVAILABLE, Availability.LIMITED, Availability.AVAILABLE]
    assert order.index(units.availability(count)) <= order.index(units.availability(count + 1))


@pytest.mark.parametrize("signal", ["maybe", None, 1.5])
def test_unknown_availability_signals_raise(signal: object) -> None:
    with pytest.raises(ValueError, match="unknown availability"):
        units.availability(signal)
