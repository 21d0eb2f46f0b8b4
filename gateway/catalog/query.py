"""Filtering and ordering the catalogue for one query: which offers, in which order.

Every sort is ascending on a key where an unknown value (NaN) sorts last, as does every
quarantined offer, and ties fall back to the offer id (the index's row order, kept by a stable
sort), so an order is total and the same on every gateway instance. Descending sorts negate the
key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import orjson
from numpy.typing import NDArray

from gpubroker.gateway.catalog import ranking
from gpubroker.gateway.catalog.filters import OfferFilters
from gpubroker.gateway.catalog.index import OfferIndex

MAX_LIMIT = 500
DEFAULT_LIMIT = 50

SORTS = {
    "price": "cheapest instance first",
    "-price": "most expensive instance first",
    "price_per_gpu": "cheapest per GPU first",
    "-price_per_gpu": "most expensive per GPU first",
    "performance": "highest datasheet FP16 TFLOPS x GPU count first",
    "value": "most TFLOPS per dollar first",
    "topsis": "best TOPSIS closeness first, with the w_* weights",
}
_COLUMNS = {
    "price": ("price", 1.0),
    "-price": ("price", -1.0),
    "price_per_gpu": ("price_per_gpu", 1.0),
    "-price_per_gpu": ("price_per_gpu", -1.0),
    "performance": ("performance", -1.0),
    "value": ("value", -1.0),
}


@dataclass(frozen=True)
class OfferQuery:
    filters: OfferFilters = field(default_factory=OfferFilters)
    sort: str = "price"
    weights: dict[str, float] = field(default_factory=lambda: dict(ranking.DEFAULT_WEIGHTS))
    limit: int = DEFAULT_LIMIT

    def shape(self) -> str:
        """A short digest of what selects and orders the offers (not the page size)."""
        weights = sorted(self.weights.items()) if self.sort == "topsis" else None
        described = orjson.dumps([self.filters.digest(), self.sort, weights])
        return hashlib.blake2b(described, digest_size=8).hexdigest()


def matching(index: OfferIndex, query: OfferQuery) -> NDArray[np.intp]:
    """Rows that pass the filters, ascending (that is, in id order)."""
    return np.flatnonzero(query.filters.mask(index))


def sort_keys(index: OfferIndex, rows: NDArray[np.intp], query: OfferQuery) -> NDArray[np.float64]:
    """Each row's ascending sort key; NaN for rows the sort cannot place, which includes every
    quarantined offer: its price cannot be trusted, so it never ranks ahead of a real one."""
    if query.sort == "topsis":
        return -ranking.closeness(index, rows, query.weights)
    column, sign = _COLUMNS[query.sort]
    keys = sign * index.numbers[column][rows]
    if index.any_quarantined:
        keys[index.numbers["quarantined"][rows] != 0] = np.nan
    return keys


def ordered(index: OfferIndex, query: OfferQuery) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """The matching rows in the query's order, and their sort keys in that order."""
    rows = matching(index, query)
    keys = sort_keys(index, rows, query)
    order = np.argsort(keys, kind="stable")
    return rows[order], keys[order]


def first(keys: NDArray[np.float64], k: int) -> NDArray[np.intp]:
    """Positions of the ``k`` smallest keys, in order (as ``ordered`` would place them), without
    sorting the rest: a first page costs a partition, not a sort of the whole result."""
    if k >= len(keys):
        return np.argsort(keys, kind="stable")
    threshold = np.partition(keys, k - 1)[k - 1]
    if np.isnan(threshold):  # fewer than k known keys: the page reaches into the unknowns
        return np.argsort(keys, kind="stable")[:k]
    # Everything below the k-th key, and every tie with it, so the tie-break by id is exact.
    candidates = np.flatnonzero(keys <= threshold)
    return candidates[np.argsort(keys[candidates], kind="stable")][:k]


def position_after(
    index: OfferIndex, rows: NDArray[np.intp], keys: NDArray[np.float64], key: float, offer_id: bytes
) -> int:
    """Where a keyset cursor resumes: the first place ordered after (key, offer_id)."""
    ids = index.ids[rows]
    if np.isnan(key):
        after = np.isnan(keys) & (ids > offer_id)
    else:
        after = np.isnan(keys) | (keys > key) | ((keys == key) & (ids > offer_id))
    return int(np.argmax(after)) if after.any() else len(rows)
