"""The analyses in plain Python, to check the jobs' output against: the same definitions, written
the obvious way."""

from __future__ import annotations

import math
from collections import defaultdict, deque
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from gpubroker.core import events
from gpubroker.core.geo import continent

SIX = Decimal("0.000001")


def significant_changes(items: Iterable[events.PriceUpdate], pct: Decimal = Decimal(5)) -> set[tuple[str, str]]:
    """(offer id, at) of every update that moves the offer's price by more than ``pct`` percent
    from the last price seen for the offer (its own ``old_price`` for the first)."""
    last: dict[str, Decimal] = {}
    fired = set()
    for update in items:
        before = last.get(update.offer_id, update.old_price)
        if abs(update.new_price - before) * 100 > pct * before:
            fired.add((update.offer_id, update.at.isoformat()))
        last[update.offer_id] = update.new_price
    return fired


def anomalies(
    items: Iterable[events.PriceUpdate], window: int = 100, min_samples: int = 20, z_limit: float = 3.0
) -> set[tuple[str, str]]:
    """(offer id, at) of every update whose per-GPU price is more than ``z_limit`` standard
    deviations from the mean of the ``window`` prices of its GPU type before it."""
    before: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=window))
    fired = set()
    for update in items:
        if update.gpu_type is None or update.gpu_count is None:
            continue
        price = float(update.new_price) / update.gpu_count
        seen = before[update.gpu_type]
        if len(seen) >= min_samples:
            mean = sum(seen) / len(seen)
            stddev = math.sqrt(max(sum(p * p for p in seen) / len(seen) - mean * mean, 0.0))
            if stddev > 0 and abs(price - mean) / stddev > z_limit:
                fired.add((update.offer_id, update.at.isoformat()))
        seen.append(price)
    return fired


def minute_aggregates(items: Iterable[events.PriceUpdate]) -> dict[tuple[str, str | None, datetime], tuple]:
    """(gpu type, continent or None for all, window start) -> (count, min, mean, max) per-GPU."""
    prices: dict[tuple[str, str | None, datetime], list[Decimal]] = defaultdict(list)
    for update in items:
        if update.gpu_type is None or update.gpu_count is None:
            continue
        start = update.at.replace(second=0, microsecond=0)
        per_gpu = (update.new_price / update.gpu_count).quantize(SIX, ROUND_HALF_UP)
        prices[(update.gpu_type, None, start)].append(per_gpu)
        prices[(update.gpu_type, continent(update.country) or "unknown", start)].append(per_gpu)
    return {key: (len(p), min(p), (sum(p) / len(p)).quantize(SIX, ROUND_HALF_UP), max(p)) for key, p in prices.items()}


def window_end(start: datetime) -> datetime:
    return start + timedelta(minutes=1)
