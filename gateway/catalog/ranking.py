"""Ranking offers with TOPSIS over price, performance, memory and availability.

Performance is datasheet dense FP16/BF16 TFLOPS of the offer's GPU (for its memory size and
form factor where they differ) times the GPU count. Offers without a price or without a known
GPU's figures cannot be placed on those criteria, so they are left out and counted, never
guessed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gpubroker.core.gpus import resolve
from gpubroker.core.offer import Availability, Offer
from gpubroker.core.topsis import Criterion, topsis

AVAILABILITY_SCORE = {Availability.AVAILABLE: 1.0, Availability.LIMITED: 0.5, Availability.UNAVAILABLE: 0.0}
DEFAULT_WEIGHTS = {"price": 0.4, "performance": 0.3, "memory": 0.2, "availability": 0.1}
BENEFIT = {"price": False, "performance": True, "memory": True, "availability": True}


def performance_tflops(offer: Offer) -> float | None:
    """Datasheet FP16/BF16 TFLOPS of the whole offer, or None when the catalogue has no figure."""
    match = resolve(offer.gpu_name)
    spec = match.spec
    if spec is None:
        return None
    memory = int(offer.gpu_memory_gb) if offer.gpu_memory_gb else match.memory_gb
    tflops = spec.figures(memory_gb=memory, form_factor=match.form_factor).fp16_tflops
    if tflops is None:  # figures differ by variant and the offer does not say which: take the lowest
        known = [v.figures.fp16_tflops for v in spec.variants if v.figures.fp16_tflops is not None]
        tflops = min(known) if known else None
    return None if tflops is None else tflops * offer.gpu_count


@dataclass(frozen=True)
class Ranked:
    offers: list[tuple[Offer, float]]
    ranked: int
    excluded: dict[str, int]
    criteria: list[dict[str, Any]]


def rank(offers: Iterable[Offer], weights: dict[str, float], limit: int) -> Ranked:
    rows: list[list[float]] = []
    kept: list[Offer] = []
    excluded = {"no_price": 0, "no_performance_figures": 0}
    for offer in offers:
        if offer.price_per_hour is None:
            excluded["no_price"] += 1
            continue
        tflops = performance_tflops(offer)
        if tflops is None:
            excluded["no_performance_figures"] += 1
            continue
        memory = (offer.gpu_memory_gb or 0.0) * offer.gpu_count
        rows.append([float(offer.price_per_hour), tflops, memory, AVAILABILITY_SCORE[offer.availability_status]])
        kept.append(offer)
    criteria = [Criterion(name, weights[name], BENEFIT[name]) for name in DEFAULT_WEIGHTS]
    ranking = topsis(np.array(rows, dtype=np.float64).reshape(len(rows), len(criteria)), criteria)
    top = ranking.top(limit) if kept else []
    explained = [
        {
            "name": criterion.name,
            "weight": float(ranking.weights[j]),
            "benefit": criterion.benefit,
            "ideal": float(ranking.ideal[j]),
            "anti_ideal": float(ranking.anti_ideal[j]),
        }
        for j, criterion in enumerate(criteria)
    ]
    return Ranked([(kept[i], float(ranking.closeness[i])) for i in top], len(kept), excluded, explained)
