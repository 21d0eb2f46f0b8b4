"""The catalogue as columns: an immutable snapshot that queries filter and sort with numpy.

Filtering 100,000 offers one Python object at a time costs tens of milliseconds; the same
filter over numpy columns costs a fraction of one. Each offer's row is computed once when the
offer arrives (``Row.of``), so building a snapshot is one array conversion, done at most once
per refresh interval however fast prices move. Rows are ordered by offer id: a stable sort on
any key then breaks ties by id, the same on every gateway instance.

Unknown values are NaN (numbers) or -1 (categories) and match no filter on that field.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from gpubroker.core.geo import continent
from gpubroker.core.offer import Availability, Offer
from gpubroker.gateway.catalog.performance import performance_tflops

AVAILABILITY_SCORE = {Availability.AVAILABLE: 1.0, Availability.LIMITED: 0.5, Availability.UNAVAILABLE: 0.0}
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


@dataclass(frozen=True, eq=False)
class OfferIndex:
    """A consistent snapshot of the catalogue. ``fingerprint`` names its content."""

    fingerprint: str
    built_at: float
    ids: NDArray[np.bytes_]
    """Offer ids (ASCII, sorted): comparable for keyset cursors, and joined into pinned pages."""
    offers: list[Offer]
    rendered: list[bytes]
    numbers: dict[str, NDArray[np.float64]]
    categories: dict[str, NDArray[np.int32]]
    compliance: NDArray[np.int64]
    vocabulary: Vocabulary

    @property
    def size(self) -> int:
        return len(self.offers)

    @classmethod
    def build(
        cls,
        fingerprint: str,
        offers: Mapping[str, Offer],
        rendered: Mapping[str, bytes],
        rows: Mapping[str, Row],
        vocabulary: Vocabulary,
    ) -> OfferIndex:
        ids = sorted(offers)
        ordered_rows = [rows[offer_id] for offer_id in ids]
        n = len(ids)
        numbers = np.array([row.numbers for row in ordered_rows], dtype=np.float64).reshape(n, len(NUMBERS))
        categories = np.array([row.categories for row in ordered_rows], dtype=np.int32).reshape(n, len(CATEGORIES))
        return cls(
            fingerprint=fingerprint,
            built_at=time.monotonic(),
            ids=np.array([offer_id.encode() for offer_id in ids], dtype="S36"),
            offers=[offers[offer_id] for offer_id in ids],
            rendered=[rendered[offer_id] for offer_id in ids],
            numbers={name: np.ascontiguousarray(numbers[:, j]) for j, name in enumerate(NUMBERS)},
            categories={name: np.ascontiguousarray(categories[:, j]) for j, name in enumerate(CATEGORIES)},
            compliance=np.array([row.compliance for row in ordered_rows], dtype=np.int64),
            vocabulary=vocabulary,
        )

    def rows_of(self, offer_ids: Iterable[bytes]) -> list[int]:
        """Rows of the given ids that are still in this snapshot, in the order given."""
        wanted = np.array(list(offer_ids), dtype="S36")
        positions = np.searchsorted(self.ids, wanted)
        found = (positions < self.size) & (self.ids[np.minimum(positions, max(self.size - 1, 0))] == wanted)
        return [int(p) for p, ok in zip(positions, found, strict=True) if ok] if self.size else []
