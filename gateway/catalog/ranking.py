"""TOPSIS over price, performance, memory and availability, on the catalogue's columns.

Performance is datasheet dense FP16/BF16 TFLOPS times the GPU count (see ``performance``).
Offers without a price or without a known GPU's figures cannot be placed on those criteria, so
they are left out and counted, never guessed; so are quarantined offers, whose price or memory
the workers' sanity guard found implausible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gpubroker.core.topsis import Criterion, Ranking, topsis
from gpubroker.gateway.catalog.index import OfferIndex

DEFAULT_WEIGHTS = {"price": 0.4, "performance": 0.3, "memory": 0.2, "availability": 0.1}
BENEFIT = {"price": False, "performance": True, "memory": True, "availability": True}
COLUMNS = {
    "price": "price",
    "performance": "performance",
    "memory": "total_memory",
    "availability": "availability_score",
}


@dataclass(frozen=True)
class Ranked:
    rows: NDArray[np.intp]
    """The best rows, best first."""
    closeness: NDArray[np.float64]
    ranked: int
    excluded: dict[str, int]
    criteria: list[dict[str, Any]]


def rankable(index: OfferIndex, rows: NDArray[np.intp]) -> tuple[NDArray[np.bool_], dict[str, int]]:
    """Which of ``rows`` TOPSIS can place, and how many it cannot, by reason. A quarantined offer
    (its price or memory failed the workers' sanity guard) is never placed."""
    trusted = index.numbers["quarantined"][rows] == 0
    price_known = trusted & ~np.isnan(index.numbers["price"][rows])
    performance_known = ~np.isnan(index.numbers["performance"][rows])
    excluded = {
        "quarantined": int((~trusted).sum()),
        "no_price": int((trusted & ~price_known).sum()),
        "no_performance_figures": int((price_known & ~performance_known).sum()),
    }
    return price_known & performance_known, excluded


def _topsis(index: OfferIndex, rows: NDArray[np.intp], weights: dict[str, float]) -> Ranking:
    matrix = np.column_stack([np.nan_to_num(index.numbers[COLUMNS[name]][rows]) for name in DEFAULT_WEIGHTS])
    criteria = [Criterion(name, weights[name], BENEFIT[name]) for name in DEFAULT_WEIGHTS]
    return topsis(matrix.reshape(len(rows), len(criteria)), criteria)


def closeness(index: OfferIndex, rows: NDArray[np.intp], weights: dict[str, float]) -> NDArray[np.float64]:
    """Each row's closeness among ``rows`` (NaN where it cannot be ranked), for the list's sort."""
    known, _ = rankable(index, rows)
    result = np.full(len(rows), np.nan)
    if known.any():
        result[known] = _topsis(index, rows[known], weights).closeness
    return result


def rank(index: OfferIndex, rows: NDArray[np.intp], weights: dict[str, float], limit: int) -> Ranked:
    """The ``limit`` best of ``rows``, with what the ranking was measured against."""
    known, excluded = rankable(index, rows)
    candidates = rows[known]
    ranking = _topsis(index, candidates, weights)
    top = ranking.top(limit) if len(candidates) else np.empty(0, dtype=np.intp)
    explained = [
        {
            "name": name,
            "weight": float(ranking.weights[j]),
            "benefit": BENEFIT[name],
            "ideal": float(ranking.ideal[j]),
            "anti_ideal": float(ranking.anti_ideal[j]),
        }
        for j, name in enumerate(DEFAULT_WEIGHTS)
    ]
    return Ranked(candidates[top], ranking.closeness[top], len(candidates), excluded, explained)
