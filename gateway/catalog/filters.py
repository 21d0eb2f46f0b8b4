"""What an offer must satisfy to be listed: the parsed, canonical form of every filter.

Parsing and naming bad input is ``gateway.params``'s job; this module only answers "which rows
match" over an ``OfferIndex``. An offer whose value is unknown never satisfies a filter on that
value (an offer that does not state its vCPUs is not "at least 8 vCPUs").
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass

import numpy as np
import orjson
from numpy.typing import NDArray

from gpubroker.gateway.catalog.index import OfferIndex
from gpubroker.gateway.catalog.rows import INTERCONNECT_BITS

RANGES = {
    # filter prefix -> index column
    "gpus": "gpu_count",
    "gpu_memory": "gpu_memory",
    "total_gpu_memory": "total_memory",
    "vcpus": "vcpus",
    "ram": "ram",
    "storage": "storage",
    "price": "price",
    "price_per_gpu": "price_per_gpu",
    "compute_capability": "compute_capability",
}


@dataclass(frozen=True)
class OfferFilters:
    providers: frozenset[str] = frozenset()
    gpu_types: frozenset[str] = frozenset()
    vendors: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    """Exact region ids, compared case-insensitively."""
    region_prefixes: frozenset[str] = frozenset()
    continents: frozenset[str] = frozenset()
    availability: frozenset[str] = frozenset()
    cpu_archs: frozenset[str] = frozenset()
    compliance: frozenset[str] = frozenset()
    """Tags the offer must all carry."""
    interconnect: frozenset[str] = frozenset()
    """Interconnects the offer must all have (``INTERCONNECT_BITS``); unknown never matches."""
    max_age_s: float | None = None
    """The offer's data (``last_updated``) at most this old when the answer is computed."""
    spot: bool | None = None
    resold: bool | None = None
    ranges: tuple[tuple[str, float | None, float | None], ...] = ()
    """(column, minimum, maximum) triples, inclusive; see ``RANGES``."""

    def mask(self, index: OfferIndex) -> NDArray[np.bool_]:
        keep = np.ones(index.size, dtype=bool)
        for category, wanted in (
            ("provider", self.providers),
            ("gpu_type", self.gpu_types),
            ("vendor", self.vendors),
            ("continent", self.continents),
            ("availability", self.availability),
            ("cpu_arch", self.cpu_archs),
        ):
            if wanted:
                keep &= _isin(index, category, index.vocabulary.codes_where(category, wanted.__contains__))
        if self.regions or self.region_prefixes:
            regions = {region.lower() for region in self.regions}
            prefixes = tuple(prefix.lower() for prefix in self.region_prefixes)

            def region_matches(region: str) -> bool:
                lowered = region.lower()
                return lowered in regions or lowered.startswith(prefixes)

            keep &= _isin(index, "region", index.vocabulary.codes_where("region", region_matches))
        if self.compliance:
            codes = [index.vocabulary.lookup("compliance", tag) for tag in self.compliance]
            if None in codes:
                return np.zeros(index.size, dtype=bool)
            required = sum(1 << code for code in codes if code is not None)
            keep &= (index.compliance & required) == required
        if self.interconnect:
            required = sum(INTERCONNECT_BITS[kind] for kind in self.interconnect)
            keep &= (index.numbers["interconnect"].astype(np.int64) & required) == required
        if self.max_age_s is not None:
            keep &= index.numbers["updated_at"] >= time.time() - self.max_age_s
        for column, wanted_flag in (("spot", self.spot), ("resold", self.resold)):
            if wanted_flag is not None:
                keep &= index.numbers[column] == float(wanted_flag)
        for column, low, high in self.ranges:
            values = index.numbers[column]
            if low is not None:
                keep &= values >= low
            if high is not None:
                keep &= values <= high
        return keep

    def digest(self) -> str:
        """A short stable digest of the filters, for cache keys and cursors."""
        described = {
            key: sorted(value) if isinstance(value, frozenset) else value for key, value in asdict(self).items()
        }
        return hashlib.blake2b(orjson.dumps(described, option=orjson.OPT_SORT_KEYS), digest_size=8).hexdigest()


def _isin(index: OfferIndex, category: str, codes: list[int]) -> NDArray[np.bool_]:
    column = index.categories[category]
    if not codes:
        return np.zeros(index.size, dtype=bool)
    if len(codes) == 1:
        return column == codes[0]
    return np.isin(column, codes)
