"""Reading ``price-update/1`` records, in plain Python (the one step SQL cannot say well).

The envelope is the product's (``gpubroker.core.events.PriceUpdate``): decoding it here with
core's own decoder keeps the jobs and the rest of the product agreeing on what a valid record
is. Prices are decimal strings, plain (``"20"``, ``"2.5"``) or with an exponent (``"2E+1"``);
both are read exactly (prices the jobs write are always plain: see ``tables.plain``). A record
that does not decode is not dropped but named: ``decode`` returns the reason, which the jobs
send with the record to the dead-letter topic.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

import orjson

from gpubroker.core.events import UNKNOWN_CONTINENT, PriceUpdate
from gpubroker.core.geo import continent

PRICE_PLACES = Decimal("0.000001")
"""Prices are exact to six decimals across the product (``gpubroker.core.offer``)."""
ISO_AT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})")
"""The ``at`` the source table reads event time from in SQL (``tables.source``): anything else
would put the update in the wrong window, so it is malformed here."""
MAX_PRICE = Decimal("1E+13")
"""Beyond what the jobs' DECIMAL(20, 6) columns hold; no GPU costs that much an hour."""


class Decoded(NamedTuple):
    """One price update as the SQL pipelines read it, or only ``error`` when it is malformed."""

    error: str | None
    provider: str | None = None
    offer_id: str | None = None
    gpu_type: str | None = None
    region: str | None = None
    continent: str | None = None
    gpu_count: int | None = None
    old_price: Decimal | None = None
    new_price: Decimal | None = None
    at: str | None = None
    """ISO 8601, as the update carries it (normalised by ``datetime.isoformat``)."""


def decode(value: str | None) -> Decoded:
    """Never raises: a record the job cannot read must not stop it (it would fail again on
    every restart), so even an unforeseen error becomes the record's reason."""
    try:
        return _decode(value)
    except Exception as exc:
        return Decoded(f"undecodable price update: {type(exc).__name__}: {exc}")


def _decode(value: str | None) -> Decoded:
    if value is None:
        return Decoded("empty record (no value)")
    try:
        update = PriceUpdate.decode(value.encode())
    except ValueError as exc:
        return Decoded(str(exc))
    for name in ("provider", "offer_id", "region"):
        if not isinstance(getattr(update, name), str) or not getattr(update, name):
            return Decoded(f"malformed price update: {name} must be a non-empty string")
    if update.gpu_type is not None and not isinstance(update.gpu_type, str):
        return Decoded("malformed price update: gpu_type must be a string or null")
    if not ISO_AT.fullmatch(str(orjson.loads(value).get("at"))):
        return Decoded("malformed price update: at must be ISO 8601 with an offset, e.g. 2026-11-26T12:00:00+00:00")
    old_price, new_price = _price(update.old_price), _price(update.new_price)
    if old_price is None or new_price is None:
        return Decoded(
            f"malformed price update: prices must be positive and below {MAX_PRICE:f}, "
            f"not {update.old_price} and {update.new_price}"
        )
    return Decoded(
        None,
        update.provider,
        update.offer_id,
        update.gpu_type,
        update.region,
        continent(update.country) or UNKNOWN_CONTINENT,
        update.gpu_count,
        old_price,
        new_price,
        update.at.isoformat(),
    )


def _price(value: Decimal) -> Decimal | None:
    if not value.is_finite() or not 0 < value < MAX_PRICE:
        return None
    rounded = value.quantize(PRICE_PLACES, rounding=ROUND_HALF_UP)
    return rounded if rounded > 0 else None
