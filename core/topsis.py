"""TOPSIS: ranking offers by closeness to the ideal over several weighted criteria.

Each criterion is a column (price, performance, memory, ...), a benefit (more is better) or a
cost (less is better). Columns are vector-normalised and weighted; the ideal point takes each
column's best value and the anti-ideal its worst; an offer's closeness is its distance to the
anti-ideal over the sum of both distances, from 0 (the worst on every criterion) to 1 (the best).
Vectorised with numpy: 100,000 offers by 5 criteria rank in a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Criterion:
    name: str
    weight: float
    benefit: bool
    """True when more is better (performance), False when less is (price)."""


@dataclass(frozen=True)
class Ranking:
    closeness: NDArray[np.float64]
    """One value per row, in [0, 1]; higher ranks first."""
    weights: NDArray[np.float64]
    """The weights used, normalised to sum to 1."""
    ideal: NDArray[np.float64]
    anti_ideal: NDArray[np.float64]

    def order(self) -> NDArray[np.intp]:
        """Row indices, best first; ties keep their input order."""
        return np.argsort(-self.closeness, kind="stable")

    def top(self, k: int) -> NDArray[np.intp]:
        """The ``k`` best row indices, best first, without sorting the rest (a first page)."""
        if k >= self.closeness.size:
            return self.order()
        candidates = np.argpartition(-self.closeness, k)[:k]
        return candidates[np.argsort(-self.closeness[candidates], kind="stable")]


def topsis(matrix: NDArray[np.float64], criteria: Sequence[Criterion]) -> Ranking:
    """Rank the rows of ``matrix`` (offers by criteria, all values finite and >= 0)."""
    values = np.asarray(matrix, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(criteria):
        raise ValueError(f"matrix must be rows x {len(criteria)} criteria, got shape {values.shape}")
    if not np.isfinite(values).all() or (values < 0).any():
        raise ValueError("criterion values must be finite and non-negative")
    weights = np.array([c.weight for c in criteria], dtype=np.float64)
    if (weights < 0).any() or not np.isfinite(weights).all() or weights.sum() <= 0:
        raise ValueError("weights must be non-negative, finite and not all zero")
    weights = weights / weights.sum()
    benefit = np.array([c.benefit for c in criteria])
    if values.shape[0] == 0:
        empty = np.empty(0)
        return Ranking(empty, weights, np.zeros(len(criteria)), np.zeros(len(criteria)))
    # Column by column on contiguous rows of the transpose: the per-criterion loop is 5 steps,
    # each a handful of whole-array operations, and avoids (offers x criteria) temporaries.
    columns = np.ascontiguousarray(values.T)
    ideal, anti_ideal = np.zeros(len(criteria)), np.zeros(len(criteria))
    to_ideal_sq, to_anti_sq = np.zeros(values.shape[0]), np.zeros(values.shape[0])
    for j, column in enumerate(columns):
        norm = float(np.sqrt(column @ column))
        weighted = column * (weights[j] / norm) if norm > 0 else np.zeros_like(column)
        best, worst = weighted.max(), weighted.min()
        ideal[j], anti_ideal[j] = (best, worst) if benefit[j] else (worst, best)
        to_ideal_sq += np.square(weighted - ideal[j])
        to_anti_sq += np.square(weighted - anti_ideal[j])
    to_ideal, to_anti = np.sqrt(to_ideal_sq), np.sqrt(to_anti_sq)
    total = to_ideal + to_anti
    # All offers equal on every weighted criterion: none is closer to the ideal than another.
    closeness = np.divide(to_anti, total, out=np.full_like(total, 0.5), where=total > 0)
    return Ranking(closeness, weights, ideal, anti_ideal)
