"""Every installed provider replayed on loopback, prices moving on every poll, faults on demand.

One :class:`~gpubroker.core.testkit.replay.ReplayServer` per provider, each serving the plugin's
recorded ``default`` scenario through :class:`MovingRecordings`: every number with a fractional
part in a recorded body (prices, and a few harmless others such as coordinates) is scaled by a
factor that alternates between 1 and ``1 - step`` each time the same request comes again. A worker
polling twice therefore sees every price move, and the diff publishes a price update per offer.
Whole numbers and numeric strings move too where their field's name says price (``PRICE_WORDS``).
Providers whose answers carry no prices (the plugin prices from its own list) change nothing.

:class:`Chaos` makes some providers misbehave for the whole run, as real APIs do: bursts of 5xx
answers, slow answers, and malformed records among good ones (a copy of a real record whose
numbers are all ``"n/a"``, which no plugin can normalise), counted so that the soak can check
that the workers rejected each one.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from importlib.resources.abc import Traversable
from typing import Any

import orjson

from gpubroker.core.plugins import load_providers
from gpubroker.core.recordings import Exchange, Recordings
from gpubroker.core.testkit.replay import Faults, ReplayServer


class MovingRecordings(Recordings):
    """A plugin's recordings whose prices alternate between two values, request after request."""

    def __init__(self, folder: Traversable, step: Decimal = Decimal("0.01"), *, malformed: bool = False) -> None:
        super().__init__(folder)
        self._step = step
        self._seen: Counter[str] = Counter()
        self.malformed = malformed
        self.malformed_served = 0
        """Malformed records sent so far (one in each answer that holds a list of records)."""

    def find(
        self, method: str, path: str, query: Mapping[str, str], body: Any, scenario: str = "default"
    ) -> Exchange | None:
        exchange = super().find(method, path, query, body, scenario)
        if exchange is None or not exchange.response.body:
            return exchange
        request = f"{method} {path} {sorted(query.items())} {orjson.dumps(body, option=orjson.OPT_SORT_KEYS)!r}"
        self._seen[request] += 1
        if self._seen[request] % 2 and not self.malformed:
            return exchange
        try:
            payload = orjson.loads(exchange.response.body)
        except orjson.JSONDecodeError:
            return exchange  # not JSON (XML, CSV): served as recorded
        if not self._seen[request] % 2:
            payload = _scaled(payload, 1 - self._step)
        if self.malformed and _add_malformed(payload):
            self.malformed_served += 1
        return replace(exchange, response=replace(exchange.response, body=orjson.dumps(payload)))


def _add_malformed(payload: Any) -> bool:
    """Append a broken copy of the first record to the first list of records in ``payload``."""
    if isinstance(payload, list) and payload and all(isinstance(item, dict) for item in payload):
        payload.append(_broken(payload[0]))
        return True
    children = payload.values() if isinstance(payload, dict) else payload if isinstance(payload, list) else ()
    return any(_add_malformed(child) for child in children)


def _broken(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float | dict | list):
        return value
    if isinstance(value, dict):
        return {key: _broken(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_broken(item) for item in value]
    return "n/a"


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


@dataclass(frozen=True)
class Chaos:
    """Providers that misbehave for the whole run (none by default)."""

    bursts: tuple[str, ...] = ()
    """These answer 502 to every request for ``burst_s`` of every ``period_s``."""
    burst_s: float = 25.0
    period_s: float = 60.0
    slow: tuple[str, ...] = ()
    """These answer every request ``slow_s`` late (within the plugins' request timeout)."""
    slow_s: float = 2.5
    malformed: tuple[str, ...] = ()
    """These add a malformed record to every answer that holds records."""


class Market:
    """A replay server per provider; ``servers[name].faults`` injects a provider's failures."""

    def __init__(self, providers: list[str] | None = None, chaos: Chaos | None = None) -> None:
        registered = load_providers(allow=providers)
        self.providers = sorted(p.info.name for p in registered if p.adapter.recordings is not None)
        self._recordings: dict[str, Traversable] = {
            p.info.name: p.adapter.recordings for p in registered if p.adapter.recordings is not None
        }
        self.chaos = chaos or Chaos()
        self.servers: dict[str, ReplayServer] = {}
        self.recordings: dict[str, MovingRecordings] = {}
        self._calm = threading.Event()
        self.bursts: list[tuple[str, float, float]] = []
        """The 5xx bursts so far: provider, start, end (epoch seconds)."""

    @contextmanager
    def running(self) -> Iterator[Market]:
        self._calm.clear()
        with ExitStack() as stack:
            for name in self.providers:
                self.recordings[name] = MovingRecordings(self._recordings[name], malformed=name in self.chaos.malformed)
                self.servers[name] = stack.enter_context(ReplayServer(self.recordings[name]))
            for name in self.chaos.slow:
                self.servers[name].faults = Faults(latency_s=self.chaos.slow_s)
            bursts = threading.Thread(target=self._bursts, name="market-bursts", daemon=True)
            bursts.start()
            try:
                yield self
            finally:
                self._calm.set()
                bursts.join(10)

    def _bursts(self) -> None:
        chaos = self.chaos
        while chaos.bursts and not self._calm.wait(chaos.period_s - chaos.burst_s):
            started = time.time()
            for name in chaos.bursts:
                self.fail(name, 1.0, status=502)
            self._calm.wait(chaos.burst_s)
            for name in chaos.bursts:
                self.heal(name)
            self.bursts.extend((name, started, time.time()) for name in chaos.bursts)

    def calm(self) -> None:
        """End the chaos: every provider answers well from now on (the end of a run)."""
        self._calm.set()
        for name in (*self.chaos.slow, *self.chaos.bursts):
            self.heal(name)
        for name in self.chaos.malformed:
            self.recordings[name].malformed = False

    @property
    def malformed_served(self) -> dict[str, int]:
        return {name: self.recordings[name].malformed_served for name in self.chaos.malformed}

    @property
    def base_urls(self) -> dict[str, str]:
        return {name: server.url for name, server in self.servers.items()}

    def fail(self, provider: str, ratio: float, status: int = 503) -> None:
        self.servers[provider].faults = Faults(status=status, ratio=ratio)

    def heal(self, provider: str) -> None:
        self.servers[provider].faults = Faults()
