"""``--group-by gpu,provider``: one row per group of offers, with the cheapest price and per-GPU
price, the mean per-GPU price, how many offers and how many are available. Offers without a price
count in ``offers`` but not in the prices; quarantined offers are left out."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from gpubroker_client import Offer

KEYS: dict[str, Callable[[Offer], Any]] = {
    "gpu": lambda o: o.gpu_type or o.gpu_name,
    "provider": lambda o: o.provider,
    "region": lambda o: o.region,
    "count": lambda o: o.gpu_count,
    "vendor": lambda o: o.gpu_vendor,
    "availability": lambda o: o.availability_status,
    "spot": lambda o: o.spot,
}


def group_keys(text: str) -> list[str]:
    """``gpu,provider`` -> the keys, refusing one that is not a key (argparse's ``type``)."""
    keys = [key.strip() for key in text.split(",") if key.strip()]
    unknown = [key for key in keys if key not in KEYS]
    if unknown or not keys:
        raise argparse.ArgumentTypeError(f"group by one or more of: {', '.join(KEYS)} (not {text!r})")
    return keys


@dataclass(frozen=True)
class Group:
    key: tuple[Any, ...]
    offers: int
    available: int
    min_price: Decimal | None
    min_price_per_gpu: Decimal | None
    mean_price_per_gpu: Decimal | None


def grouped(offers: Iterable[Offer], keys: Sequence[str]) -> list[Group]:
    """Groups, cheapest per GPU first (those without a price last)."""
    members: dict[tuple[Any, ...], list[Offer]] = {}
    for offer in offers:
        if offer.quarantined is None:
            members.setdefault(tuple(KEYS[key](offer) for key in keys), []).append(offer)
    groups = [_group(key, found) for key, found in members.items()]
    return sorted(groups, key=lambda g: (g.min_price_per_gpu is None, g.min_price_per_gpu or 0, str(g.key)))


def _group(key: tuple[Any, ...], offers: list[Offer]) -> Group:
    prices = [o.price_per_hour for o in offers if o.price_per_hour is not None]
    per_gpu = [p for p in (o.price_per_gpu for o in offers) if p is not None]
    mean = (sum(per_gpu, Decimal(0)) / len(per_gpu)).quantize(Decimal("0.000001")) if per_gpu else None
    available = sum(1 for o in offers if o.availability_status == "available")
    return Group(key, len(offers), available, min(prices, default=None), min(per_gpu, default=None), mean)
