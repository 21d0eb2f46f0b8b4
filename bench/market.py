"""Every installed provider replayed on loopback, prices moving on every poll, faults on demand.

One :class:`~gpubroker.core.testkit.replay.ReplayServer` per provider, each serving the plugin's
recorded ``default`` scenario through :class:`MovingRecordings`: every number with a fractional
part in a recorded body (prices, and a few harmless others such as coordinates) is scaled by a
factor that alternates between 1 and ``1 - step`` each time the same request comes again. A worker
polling twice therefore sees every price move, and the diff publishes a price update per offer.
Whole numbers and numeric strings move too where their field's name says price (``PRICE_WORDS``).
Providers whose answers carry no prices (the plugin prices from its own list) change nothing.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from decimal import Decimal
from importlib.resources.abc import Traversable
from typing import Any

import orjson

from gpubroker.core.plugins import load_providers
from gpubroker.core.recordings import Exchange, Recordings
from gpubroker.core.testkit.replay import Faults, ReplayServer


class MovingRecordings(Recordings):
    """A plugin's recordings whose prices alternate between two values, request after request."""

    def __init__(self, folder: Traversable, step: Decimal = Decimal("0.01")) -> None:
        super().__init__(folder)
        self._step = step
        self._seen: Counter[str] = Counter()

    def find(
        self, method: str, path: str, query: Mapping[str, str], body: Any, scenario: str = "default"
    ) -> Exchange | None:
        exchange = super().find(method, path, query, body, scenario)
        if exchange is None or not exchange.response.body:
            return exchange
        request = f"{method} {path} {sorted(query.items())} {orjson.dumps(body, option=orjson.OPT_SORT_KEYS)!r}"
        self._seen[request] += 1
        if self._seen[request] % 2:
            return exchange
        try:
            payload = orjson.loads(exchange.response.body)
        except orjson.JSONDecodeError:
            return exchange  # not JSON (XML, CSV): served as recorded
        moved = orjson.dumps(_scaled(payload, 1 - self._step))
        return replace(exchange, response=replace(exchange.response, body=moved))


PRICE_WORDS = ("price", "cost", "cents", "dph", "rate", "hour", "amount", "usd", "eur", "value", "unit")
"""A field whose name holds one of these is a price, or holds prices, in some provider's answer."""


def _scaled(value: Any, factor: Decimal, pricey: bool = False) -> Any:
    """Fractional numbers anywhere, and whole numbers and numeric strings under a price-like
    name; whole numbers stay whole (cents), strings keep their decimals."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return float((Decimal(repr(value)) * factor).quantize(Decimal("0.000001")))
    if pricey and isinstance(value, int) and value > 1:
        return max(1, int((value * factor).to_integral_value()))
    if pricey and isinstance(value, str) and _NUMBER.fullmatch(value):
        places = Decimal(1).scaleb(-len(value.partition(".")[2])) if "." in value else Decimal(1)
        return str((Decimal(value) * factor).quantize(places))
    if isinstance(value, dict):
        return {key: _scaled(item, factor, pricey or _price_like(key)) for key, item in value.items()}
    if isinstance(value, list):
        return [_scaled(item, factor, pricey) for item in value]
    return value


def _price_like(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in PRICE_WORDS)


_NUMBER = re.compile(r"\d+(\.\d+)?")


class Market:
    """A replay server per provider; ``servers[name].faults`` injects a provider's failures."""

    def __init__(self, providers: list[str] | None = None) -> None:
        registered = load_providers(allow=providers)
        self.providers = sorted(p.info.name for p in registered if p.adapter.recordings is not None)
        self._recordings: dict[str, Traversable] = {
            p.info.name: p.adapter.recordings for p in registered if p.adapter.recordings is not None
        }
        self.servers: dict[str, ReplayServer] = {}

    @contextmanager
    def running(self) -> Iterator[Market]:
        with ExitStack() as stack:
            for name in self.providers:
                self.servers[name] = stack.enter_context(ReplayServer(MovingRecordings(self._recordings[name])))
            yield self

    @property
    def base_urls(self) -> dict[str, str]:
        return {name: server.url for name, server in self.servers.items()}

    def fail(self, provider: str, ratio: float, status: int = 503) -> None:
        self.servers[provider].faults = Faults(status=status, ratio=ratio)

    def heal(self, provider: str) -> None:
        self.servers[provider].faults = Faults()
