"""The market's 1-minute windows, from the stream analytics: kept for ``GET
/api/v2/analytics/market`` and pushed to ``market`` subscribers as each window closes.

The analytics (Flink jobs, see ``flink/``) publish one ``price-aggregate/1`` record per GPU
type, and per GPU type and continent, for every closed window, on the compacted
``gpubroker.price-aggregates``. Every gateway instance reads it from the beginning, so it holds
the latest window of each GPU type and continent whatever it missed, and pushes to its own
subscribers only what arrives after that backlog (as the hub does for offers). Without a
running analytics job nothing arrives and nothing else changes: ``health`` says so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import datetime, timedelta

import orjson

from gpubroker.core import events
from gpubroker.core.bus import Bus, BusError, Record
from gpubroker.core.prices import price_number
from gpubroker.gateway.realtime.hub import Event, Hub

log = logging.getLogger(__name__)

STREAM = "m"
"""Hub stream code of the aggregates topic: event ids say ``m0.<offset>`` for its partition 0."""
QUIET_AFTER = timedelta(minutes=3)
"""No window closed for this long (event time): the analytics are not flowing. Windows close
every minute while prices move at all, so a few minutes without one means no job is running,
the job is behind, or no provider's price has changed."""


class Market:
    def __init__(self, bus: Bus, hub: Hub) -> None:
        self._bus = bus
        self._hub = hub
        self.latest: dict[str, events.PriceAggregate] = {}
        """The newest window of each GPU type and continent, by the aggregates' record key."""
        self._backlog: dict[int, int] = {}
        self.received = 0
        self.rejected = 0
        self.received_at: float | None = None
        """When (monotonic) the last aggregate arrived."""

    async def run(self) -> None:
        try:
            for record in (await self._bus.read_compacted(events.PRICE_AGGREGATES)).values():
                self._backlog[record.partition] = max(record.offset, self._backlog.get(record.partition, -1))
                self.apply(record)
        except BusError as exc:
            log.warning("could not read the market's windows (%s); following the topic instead", exc)
        async for record in self._bus.subscribe([events.PRICE_AGGREGATES], from_beginning=True):
            self.apply(record)

    def apply(self, record: Record) -> None:
        if record.value is None or record.key is None:
            return
        try:
            aggregate = events.PriceAggregate.decode(record.value)
        except ValueError as exc:
            self.rejected += 1
            log.error("skipping undecodable market window at offset %s: %s", record.offset, exc)
            return
        held = self.latest.get(record.key)
        if held is not None and held.window_start >= aggregate.window_start:
            return  # a window read again (the backlog is followed by the whole topic): nothing new
        self.latest[record.key] = aggregate
        self.received += 1
        self.received_at = time.monotonic()
        if record.offset > self._backlog.get(record.partition, -1):
            self._publish(record, aggregate)

    def _publish(self, record: Record, aggregate: events.PriceAggregate) -> None:
        stream = f"{STREAM}{record.partition}"
        payload = orjson.dumps({"type": "market", "window": "1m", **render(aggregate)})
        event_id = self._hub.next_id(stream, record.offset)
        self._hub.publish(Event("market", payload, stream, record.offset, event_id, "", gpu_type=aggregate.gpu_type))

    def windows(self, gpu_types: frozenset[str], continents: frozenset[str]) -> list[events.PriceAggregate]:
        """The latest windows of these GPU types (all when empty) and continents (all, and every
        continent's own, when empty), by GPU type, then continent (all first)."""
        chosen: Iterable[events.PriceAggregate] = self.latest.values()
        if gpu_types:
            chosen = (a for a in chosen if a.gpu_type in gpu_types)
        if continents:
            chosen = (a for a in chosen if a.continent in continents)
        return sorted(chosen, key=lambda a: (a.gpu_type, a.continent or ""))

    def health(self, now: datetime) -> dict[str, object]:
        newest = max((a.window_end for a in self.latest.values()), default=None)
        flowing = newest is not None and now - newest < QUIET_AFTER
        return {
            "status": "flowing" if flowing else "quiet",
            "last_window_end": None if newest is None else newest.isoformat(),
            "seconds_since_last_window": None
            if self.received_at is None
            else round(time.monotonic() - self.received_at, 1),
            "windows_received": self.received,
            "rejected": self.rejected,
        }


def render(aggregate: events.PriceAggregate) -> dict[str, object]:
    """A window as the API shows it: per-GPU prices as numbers in their exact digits (for orjson),
    like every price it serves."""
    return {
        "gpu_type": aggregate.gpu_type,
        "continent": aggregate.continent,
        "window_start": aggregate.window_start.isoformat(),
        "window_end": aggregate.window_end.isoformat(),
        "count": aggregate.count,
        "min_price_per_gpu": price_number(aggregate.min),
        "mean_price_per_gpu": price_number(aggregate.mean),
        "max_price_per_gpu": price_number(aggregate.max),
    }
