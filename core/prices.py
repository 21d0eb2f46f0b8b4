"""Prices: their quantum, their range and their one wire form.

Every price the product handles is US dollars with at most six decimal places (a micro-dollar),
positive and no larger than the database columns hold. On the wire a price is written as a
plain decimal: ``"20"``, ``"2.5"``, ``"0.000001"``. Never exponent notation, which is what both
``str(Decimal("20").normalize())`` (``"2E+1"``) and a float (``1e-06``) produce and what many
decimal parsers (a Flink SQL ``DECIMAL`` cast, JavaScript, a spreadsheet) refuse or misread;
never needless trailing zeros. Bus envelopes carry that text as a JSON string; REST answers and
offer envelopes as a JSON number with the same digits (``price_number``). Decoders accept what
older records hold (exponent forms, JSON numbers) through ``parse_price``.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated

import orjson
from pydantic import PlainSerializer, WithJsonSchema

PRICE_QUANTUM = Decimal("0.000001")
MAX_PRICE = Decimal("99999999.999999")
"""The largest price stored: the database keeps 14 digits, six of them decimals."""


def quantize(value: Decimal) -> Decimal:
    """``value`` rounded to the micro-dollar, keeping its value (``20`` stays ``20``)."""
    return value.quantize(PRICE_QUANTUM)


def price_text(value: Decimal) -> str:
    """The wire form: ``^-?\\d+(\\.\\d+)?$``, no exponent and no trailing zeros after the point."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def price_number(value: Decimal) -> orjson.Fragment:
    """The price as a JSON number with the wire form's digits, for orjson to embed as is."""
    return orjson.Fragment(price_text(value).encode())


def parse_price(value: object) -> Decimal:
    """A price from its wire form, an older record's exponent form or a JSON number; anything
    else (booleans, NaN, infinities, text that is not a number) is a ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise ValueError(f"not a price: {value!r}")
    try:
        parsed = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"not a price: {value!r}") from None
    if not parsed.is_finite():
        raise ValueError(f"not a price: {value!r}")
    return parsed


Price = Annotated[
    Decimal,
    PlainSerializer(lambda value: price_number(value), return_type=object, when_used="json"),
    WithJsonSchema({"type": "number", "description": "USD, at most six decimal places."}),
]
"""A price field of a response schema: a JSON number written in the wire form's digits."""
