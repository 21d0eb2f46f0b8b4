"""Spreading a provider's request work over its targets (regions, endpoints, page series).

Smooth weighted round-robin (the interleaving nginx uses) over targets that have work waiting.
A target's weight halves when it answers slower than ``slow_after_s`` (SRS FR-5.2) or fails,
and recovers step by step with fast successes, so a struggling region gets fewer of the
concurrent slots while the others carry on.
"""

from __future__ import annotations

from collections.abc import Iterable

BASE_WEIGHT = 8.0
MIN_WEIGHT = 0.5
SLOW_AFTER_S = 2.0


class WeightedRoundRobin:
    def __init__(self, *, slow_after_s: float = SLOW_AFTER_S) -> None:
        self._slow_after_s = slow_after_s
        self._weights: dict[str, float] = {}
        self._current: dict[str, float] = {}

    def weight(self, target: str) -> float:
        return self._weights.get(target, BASE_WEIGHT)

    def pick(self, targets: Iterable[str]) -> str:
        candidates = list(targets)
        if not candidates:
            raise ValueError("no target to pick from")
        total = 0.0
        for target in candidates:
            weight = self.weight(target)
            self._current[target] = self._current.get(target, 0.0) + weight
            total += weight
        chosen = max(candidates, key=lambda target: self._current[target])
        self._current[chosen] -= total
        return chosen

    def observe(self, target: str, *, ok: bool, latency_s: float) -> None:
        weight = self.weight(target)
        if not ok or latency_s > self._slow_after_s:
            self._weights[target] = max(MIN_WEIGHT, weight / 2)
        else:
            self._weights[target] = min(BASE_WEIGHT, weight * 2)
