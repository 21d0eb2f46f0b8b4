"""Which continent a country is on, so offers can be filtered by continent from their country.

Offers carry an optional ISO 3166-1 alpha-2 ``country``; the gateway's ``continent=`` filter maps it
through the bundled table (``continents.toml``), which lists every officially assigned code once.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib.resources import files


@cache
def _by_country() -> dict[str, str]:
    table = tomllib.loads((files("gpubroker.core") / "continents.toml").read_text())
    return {code: name for name, entry in table.items() for code in entry["codes"]}


CONTINENTS: tuple[str, ...] = tuple(sorted(set(_by_country().values())))


def continent(country: str | None) -> str | None:
    """The continent of an alpha-2 country code (any case), or None for None or an unknown code."""
    if country is None:
        return None
    return _by_country().get(country.strip().upper())
