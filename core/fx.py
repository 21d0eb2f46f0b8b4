"""Converting provider prices to US dollars through a dated rate table.

The bundled table (``fx_rates.toml``) says the day its rates are from; a deployment replaces it
with ``GPUBROKER_FX_RATES`` (JSON: ``{"as_of": "2026-11-25", "usd_per_unit": {"EUR": "1.05"}}``)
to use its own rates. A process may also be handed a refreshed table while it runs (``use``:
the gateway takes the one the ``data_sync`` DAG stored); the configured table stays the
fallback. A currency missing from the table is an error, never a guess.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from importlib.resources import files

import orjson

from gpubroker.core.errors import ConfigurationError
from gpubroker.core.units import decimal


@dataclass(frozen=True)
class RateTable:
    as_of: date
    usd_per_unit: Mapping[str, Decimal]
    source: str = "bundled"
    """Where the rates come from: ``bundled``, ``configured`` or the reference source's name."""

    def to_usd(self, amount: Decimal, currency: str) -> Decimal:
        code = currency.strip().upper()
        if code == "USD":
            return amount
        try:
            return amount * self.usd_per_unit[code]
        except KeyError:
            known = ", ".join(sorted(self.usd_per_unit))
            raise ValueError(f"no exchange rate for {currency!r} (rates as of {self.as_of}: USD, {known})") from None

    @classmethod
    def from_mapping(cls, data: Mapping[str, object], source: str = "bundled") -> RateTable:
        rates = data.get("usd_per_unit")
        if not isinstance(rates, Mapping) or "as_of" not in data:
            raise ValueError("a rate table needs 'as_of' and a 'usd_per_unit' mapping")
        table = {str(code).upper(): decimal(rate) for code, rate in rates.items()}
        if any(rate <= 0 for rate in table.values()):
            raise ValueError("exchange rates must be positive")
        return cls(date.fromisoformat(str(data["as_of"])), table, source)


_refreshed: RateTable | None = None


def rates() -> RateTable:
    """The table in use: a refreshed one handed to ``use``, else the configured one."""
    return _refreshed if _refreshed is not None else configured_rates()


def use(table: RateTable | None) -> None:
    """Convert with ``table`` from now on in this process (None: back to the configured one)."""
    global _refreshed
    _refreshed = table


@cache
def configured_rates() -> RateTable:
    """``GPUBROKER_FX_RATES`` if set, else the bundled table."""
    configured = os.environ.get("GPUBROKER_FX_RATES")
    try:
        if configured:
            return RateTable.from_mapping(orjson.loads(configured), "configured")
        return RateTable.from_mapping(tomllib.loads(files(__package__).joinpath("fx_rates.toml").read_text()))
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise ConfigurationError(f"GPUBROKER_FX_RATES: {exc}") from None


def to_usd(amount: Decimal, currency: str) -> Decimal:
    return rates().to_usd(amount, currency)
