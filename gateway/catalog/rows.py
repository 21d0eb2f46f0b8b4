"""An offer as one row of numbers and category codes: what the catalogue's columns are made of.

Each offer's row is computed once, when the offer arrives (``Row.of``). Unknown values are NaN
(numbers) or -1 (categories) and match no filter on that field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from gpubroker.core.geo import continent
from gpubroker.core.gpus import get
from gpubroker.core.offer import INTERCONNECTS, Availability, Offer
from gpubroker.gateway.catalog.performance import performance_tflops

AVAILABILITY_SCORE = {Availability.AVAILABLE: 1.0, Availability.LIMITED: 0.5, Availability.UNAVAILABLE: 0.0}
INTERCONNECT_BITS = {kind: 1 << bit for bit, kind in enumerate(INTERCONNECTS)}
"""An offer's interconnects as bits of one number column (exact in a float64)."""
MAX_COMPLIANCE_TAGS = 63
"""Compliance tags are a bit set in one int64 column; the 64th distinct tag is refused."""

CATEGORIES = ("provider", "gpu_type", "vendor", "region", "continent", "cpu_arch", "availability")
NUMBERS = (
    "price",
    "price_per_gpu",
    "gpu_count",
    "gpu_memory",
    "total_memory",
    "vcpus",
    "ram",
    "storage",
    "performance",
    "value",
    "availability_score",
    "spot",
    "resold",
    "quarantined",
    "compute_capability",
    "interconnect",
    "updated_at",
)


class Vocabulary:
    """Interns the strings of each category as small integer codes, shared by all snapshots."""

    def __init__(self) -> None:
        self._codes: dict[str, dict[str, int]] = {name: {} for name in (*CATEGORIES, "compliance")}

    def code(self, category: str, value: str | None) -> int:
        if value is None:
            return -1
        codes = self._codes[category]
        found = codes.get(value)
        if found is None:
            if category == "compliance" and len(codes) >= MAX_COMPLIANCE_TAGS:
                raise ValueError(f"more than {MAX_COMPLIANCE_TAGS} distinct compliance tags")
            found = codes[value] = len(codes)
        return found

    def codes_where(self, category: str, keep: Callable[[str], bool]) -> list[int]:
        return [code for value, code in self._codes[category].items() if keep(value)]

    def lookup(self, category: str, value: str) -> int | None:
        return self._codes[category].get(value)


class Row(NamedTuple):
    """One offer's numbers and category codes, computed once when the offer arrives."""

    numbers: tuple[float, ...]
    categories: tuple[int, ...]
    compliance: int

    @classmethod
    def of(cls, offer: Offer, vocabulary: Vocabulary) -> Row:
        nan = float("nan")
        price = nan if offer.price_per_hour is None else float(offer.price_per_hour)
        memory = nan if offer.gpu_memory_gb is None else offer.gpu_memory_gb
        performance = performance_tflops(offer)
        perf = nan if performance is None else performance
        spec = None if offer.gpu_type is None else get(offer.gpu_type)
        numbers = (
            price,
            price / offer.gpu_count,
            float(offer.gpu_count),
            memory,
            memory * offer.gpu_count,
            _number(offer.vcpus),
            _number(offer.ram_gb),
            _number(offer.storage_gb),
            perf,
            perf / price,
            AVAILABILITY_SCORE[offer.availability_status],
            float(offer.spot),
            float(offer.resold_from is not None),
            float(offer.quarantined is not None),
            _number(None if spec is None else spec.compute_capability_number),
            float(sum(INTERCONNECT_BITS[kind] for kind in offer.interconnect)),
            offer.last_updated.timestamp(),
        )
        categories = (
            vocabulary.code("provider", offer.provider),
            vocabulary.code("gpu_type", offer.gpu_type),
            vocabulary.code("vendor", offer.gpu_vendor),
            vocabulary.code("region", offer.region),
            vocabulary.code("continent", continent(offer.country)),
            vocabulary.code("cpu_arch", offer.cpu_arch),
            vocabulary.code("availability", offer.availability_status.value),
        )
        compliance = 0
        for tag in offer.compliance_tags:
            compliance |= 1 << vocabulary.code("compliance", tag)
        return cls(numbers, categories, compliance)


def _number(value: float | None) -> float:
    return float("nan") if value is None else float(value)
