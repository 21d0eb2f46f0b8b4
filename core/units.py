"""Unit conversions every plugin needs, written once and property-tested.

Providers quote prices in cents, per GPU, per GB-month and in several currencies, and memory
in MiB, MB or bytes. Plugins call these instead of doing arithmetic of their own, so the same
rule (for example, a month is 730 hours) holds for every provider.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from gpubroker.core.offer import Availability

HOURS_PER_MONTH = Decimal(730)  # 365 * 24 / 12, the convention cloud price lists use
MIB_PER_GIB = 1024
BYTES_PER_GIB = 1024**3


def decimal(value: object) -> Decimal:
    """A finite ``Decimal`` from a JSON number or string; floats go through ``str`` so that
    ``0.1`` stays ``0.1``. Anything else is a ``ValueError`` naming the value."""
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    try:
        result = Decimal(str(value).strip()) if isinstance(value, (int, float, str, Decimal)) else None
    except InvalidOperation:
        result = None
    if result is None or not result.is_finite():
        raise ValueError(f"not a number: {value!r}")
    return result


def dollars_from_cents(cents: object) -> Decimal:
    return decimal(cents) / 100


def per_instance(price_per_gpu: Decimal, gpu_count: int) -> Decimal:
    """A per-GPU hourly price for an instance of ``gpu_count`` GPUs."""
    if gpu_count < 1:
        raise ValueError(f"gpu_count must be positive, got {gpu_count}")
    return price_per_gpu * gpu_count


def monthly_to_hourly(price_per_month: Decimal) -> Decimal:
    return price_per_month / HOURS_PER_MONTH


def storage_hourly(price_per_gb_month: Decimal, gb: float) -> Decimal:
    """The hourly cost of ``gb`` of disk priced per GB-month."""
    return price_per_gb_month * decimal(gb) / HOURS_PER_MONTH


def mib_to_gb(mib: float) -> float:
    return round(float(mib) / MIB_PER_GIB, 1)


def bytes_to_gb(size: float) -> float:
    return round(float(size) / BYTES_PER_GIB, 1)


_AVAILABILITY_WORDS = {
    Availability.AVAILABLE: ("available", "high", "medium", "plenty", "abundant", "in stock", "yes", "true"),
    Availability.LIMITED: ("limited", "low", "scarce", "few", "constrained", "waitlist"),
    Availability.UNAVAILABLE: (
        "unavailable", "none", "no", "false", "shortage", "sold out", "out of stock", "not available", "zero",
    ),
}  # fmt: skip
_WORD_TO_AVAILABILITY = {word: level for level, words in _AVAILABILITY_WORDS.items() for word in words}


def availability(signal: object) -> Availability:
    """Map a provider's availability signal onto ours: booleans, counts of free units (0 is
    unavailable, 1-2 limited, more available) and the usual words. Unknown words raise."""
    if isinstance(signal, bool):
        return Availability.AVAILABLE if signal else Availability.UNAVAILABLE
    if isinstance(signal, int):
        if signal <= 0:
            return Availability.UNAVAILABLE
        return Availability.LIMITED if signal <= 2 else Availability.AVAILABLE
    if isinstance(signal, str):
        level = _WORD_TO_AVAILABILITY.get(" ".join(signal.lower().replace("-", " ").replace("_", " ").split()))
        if level is not None:
            return level
    raise ValueError(f"unknown availability signal {signal!r}")
