"""The FX table from a public reference-rate source: the European Central Bank's daily euro
foreign exchange reference rates (``eurofxref-daily.xml``).

The document holds one ``Cube`` with the day (``time``) and, inside it, one ``Cube`` per currency
with its units per euro (``currency``, ``rate``). Turned into the product's table, US dollars per
unit: the euro is worth the USD rate, any other currency the USD rate over its own. The fetcher
takes the source's URL, so tests replay a recording of the document
(``recordings/ecb``) at the source's own path; the gateway keeps the bundled table as the
fallback whenever this fails.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from decimal import Decimal, InvalidOperation
from typing import Any

import aiohttp

from gpubroker.core.fx import RateTable

SOURCE = "ecb-eurofxref"
PRECISION = Decimal("0.0000000001")
TIMEOUT_S = 30.0
MAX_BYTES = 1 << 20


class SourceError(RuntimeError):
    """The source could not be read, or what it sent is not a rate table."""


def parse(document: bytes) -> RateTable:
    try:
        root = ElementTree.fromstring(document)
    except ElementTree.ParseError as exc:
        raise SourceError(f"not XML: {exc}") from None
    day = next((cube for cube in root.iter() if _local(cube.tag) == "Cube" and cube.get("time")), None)
    if day is None:
        raise SourceError("no <Cube time=...> with the day's rates")
    per_euro: dict[str, Decimal] = {}
    for cube in day:
        code, rate = cube.get("currency"), cube.get("rate")
        if _local(cube.tag) != "Cube" or not code or not rate:
            continue
        try:
            value = Decimal(rate)
        except InvalidOperation:
            raise SourceError(f"{code}: rate {rate!r} is not a number") from None
        if not value.is_finite() or value <= 0:
            raise SourceError(f"{code}: rate {rate!r} is not a positive number")
        per_euro[code.upper()] = value
    if "USD" not in per_euro:
        raise SourceError("no USD rate: the table cannot be turned into US dollars")
    usd = per_euro.pop("USD")
    usd_per_unit: dict[str, Any] = {"EUR": usd.quantize(PRECISION)}
    usd_per_unit |= {code: (usd / rate).quantize(PRECISION) for code, rate in per_euro.items()}
    try:
        return RateTable.from_mapping({"as_of": day.get("time"), "usd_per_unit": usd_per_unit}, SOURCE)
    except ValueError as exc:
        raise SourceError(str(exc)) from None


async def fetch(url: str) -> RateTable:
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as session,
            session.get(url) as answer,
        ):
            document = await answer.content.read(MAX_BYTES)
            status = answer.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise SourceError(f"{url} cannot be reached: {exc!r}") from None
    if status != 200:
        raise SourceError(f"{url} answered {status}")
    return parse(document)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]
