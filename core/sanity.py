"""The price sanity guard: offers whose price or memory cannot be real are quarantined.

A unit mistake in a plugin (cents read as dollars, a monthly price read as hourly, a per-GPU price
taken for the whole instance's, MiB read as GB) yields an offer that looks valid and ranks first.
The worker runs every poll through ``PriceGuard`` before publishing; an offer that fails a check
keeps its data but carries ``quarantined`` (the reason), which keeps it out of ranking, and the
worker reports the poll's quarantined offers as a provider event. The rule lives here, once.

Checks, in order (the first that fails is the reason):

1. **Memory**: a per-GPU memory above the family's largest datasheet size
   (``GpuSpec.plausible_memory``, the resolver's rule too) is not that GPU's.
2. **Price band**: the price per GPU-hour must lie in the family's band (``price_band``).
3. **Priced like one GPU**: an instance of 4 or more GPUs whose whole price is within a factor
   of 1.5 of what the same provider charges for one such GPU (the median of its one-GPU offers of
   the family, on the same spot terms) was almost certainly given a per-GPU price.
4. **Jump**: a price more than ``MAX_JUMP`` times above or below the offer's last trusted price.

The band cannot catch every mistake at every price (a cheap marketplace card read in cents may
still look plausible); it is built never to reject a real price, and the other checks catch what
it cannot.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from gpubroker.core.gpus import CATALOG, GpuSpec
from gpubroker.core.gpus.catalog import GpuClass
from gpubroker.core.offer import Offer
from gpubroker.core.prices import price_text, quantize

MAX_JUMP = Decimal(10)
"""A price that moved more than this factor (up or down) between polls is quarantined."""

SIBLING_MIN_GPUS = 4
SIBLING_TOLERANCE = 1.5

# USD per GPU-hour per GB/s of the GPU's datasheet memory bandwidth, by the catalogue's class.
BAND_PER_GBS: dict[GpuClass, tuple[float, float]] = {
    "datacenter": (0.00003, 0.05),
    "workstation": (0.00003, 0.02),
    "consumer": (0.00002, 0.01),
    "accelerator": (0.00005, 0.03),
}
"""The plausible price band of a GPU, per GB/s of its memory bandwidth, by datasheet class.

Rental prices follow the class of a card (who rents it out, in what kind of host) and, within a
class, its memory bandwidth: the datasheet figure every catalogue family has, and the one
inference speed tracks. Real prices per GPU-hour (on-demand list prices and marketplace asks,
2024-2025; per GB/s in brackets) set the bounds, with a wide margin on both sides:

- datacenter, highest: AWS g4dn.16xlarge, one T4 (320 GB/s) in a 64-vCPU host, $4.352/h
  [0.0136]; g6.16xlarge, one L4, $3.397 [0.0113]; g6e.16xlarge, one L40S, $7.577 [0.0088];
  p5.48xlarge, 8x H100, $98.32 [0.0037]; p6-b200.48xlarge, 8x B200, $113.93 [0.0018].
  Lowest: Vast.ai V100 $0.20 [0.00022], A100 SXM4 $0.73 [0.00036], H100 SXM $1.80 [0.00054];
  RunPod A100 80GB spot $1.19 [0.00058]. Band 0.00003-0.05: 3.7x above the T4 host, 7x below
  the cheapest V100.
- workstation: Paperspace A4000 $0.76 [0.0017], M4000 $0.45 [0.0023], A6000 $1.93 [0.0025];
  lowest Vast.ai RTX A4000 $0.14 [0.00031]. Band 0.00003-0.02.
- consumer: marketplace hosts only. Highest RunPod RTX 4090 $0.69 [0.0007]; lowest Vast.ai
  RTX 3060 $0.0675 in a 4-GPU host [0.00019], RTX 3090 $0.225 [0.00024]. Band 0.00002-0.01.
- accelerator: Google Cloud TPU v6e $2.70-3.24 per chip [0.0020], spot $1.89 [0.0012]; TPU v5p
  $4.20, spot $2.415 [0.0009]; AWS dl1.24xlarge, 8x Gaudi, $13.11 [0.0016]. Band 0.00005-0.03.

What each bound catches: a price read in cents is flagged wherever the real price is above
1/100 of the band's top (an H100 above $1.68, a T4 above $0.16, any RTX 4090 above $0.10); a
monthly price read as hourly is flagged above 1/730 of it, which is every real price.
"""


@dataclass(frozen=True, slots=True)
class PriceBand:
    """Plausible USD per GPU-hour for one GPU family (inclusive)."""

    low: Decimal
    high: Decimal

    def holds(self, price: Decimal) -> bool:
        return self.low <= price <= self.high


def price_band(spec: GpuSpec, memory_gb: float | None = None) -> PriceBand | None:
    """The family's band; ``None`` when the catalogue has no bandwidth figure for it.

    A slice of a GPU (a per-GPU memory below the family's smallest size: MIG, vGPU) costs its
    share of the GPU, so the band's bottom is scaled down by that share.
    """
    bandwidths = [v.figures.bandwidth_gbs for v in spec.variants if v.figures.bandwidth_gbs is not None]
    if not bandwidths:
        return None
    low_rate, high_rate = BAND_PER_GBS[spec.gpu_class]
    low = low_rate * min(bandwidths)
    if memory_gb and spec.memory_gb and memory_gb < spec.memory_gb[0]:
        low *= memory_gb / spec.memory_gb[0]
    return PriceBand(_money(low), _money(high_rate * max(bandwidths)))


def _money(value: float) -> Decimal:
    return quantize(Decimal(repr(value)))


@dataclass(frozen=True, slots=True)
class Quarantine:
    """One offer the guard held back, and why."""

    offer: Offer
    reason: str

    def to_json(self) -> dict[str, object]:
        return {
            "offer_id": self.offer.id,
            "provider_offer_id": self.offer.provider_offer_id,
            "gpu_type": self.offer.gpu_type,
            "gpu_count": self.offer.gpu_count,
            "price_per_hour": None if self.offer.price_per_hour is None else price_text(self.offer.price_per_hour),
            "reason": self.reason,
        }


class PriceGuard:
    """Judges each poll of one provider; remembers each offer's last trusted price.

    ``trusted`` seeds the memory (the offers a restarted worker had published): a quarantined
    offer's price is never trusted, so a price that jumped stays quarantined while it holds and
    is released when it comes back within ``MAX_JUMP`` of the last trusted one.
    """

    def __init__(self, trusted: Iterable[Offer] = ()) -> None:
        self._trusted: dict[str, Decimal] = {
            offer.id: offer.price_per_hour
            for offer in trusted
            if offer.price_per_hour is not None and offer.quarantined is None
        }

    def check(self, offers: Iterable[Offer]) -> tuple[list[Offer], list[Quarantine]]:
        """The poll's offers, each quarantined or cleared, and the quarantined ones with reasons."""
        offers = list(offers)
        single = _single_gpu_prices(offers)
        judged: list[Offer] = []
        held: list[Quarantine] = []
        for offer in offers:
            reason = self.reason(offer, single)
            if reason is None:
                if offer.price_per_hour is not None:
                    self._trusted[offer.id] = offer.price_per_hour
                judged.append(offer if offer.quarantined is None else offer.model_copy(update={"quarantined": None}))
            else:
                quarantined = offer.model_copy(update={"quarantined": reason})
                judged.append(quarantined)
                held.append(Quarantine(quarantined, reason))
        return judged, held

    def reason(self, offer: Offer, single_gpu_prices: Mapping[tuple[str, bool], Decimal] | None = None) -> str | None:
        """Why ``offer`` cannot be trusted, or ``None``. Pure apart from reading trusted prices."""
        spec = CATALOG.get(offer.gpu_type) if offer.gpu_type else None
        if spec is not None and offer.gpu_memory_gb is not None and not spec.plausible_memory(offer.gpu_memory_gb):
            largest = f"{spec.memory_gb[-1]} GB" if spec.memory_gb else "no whole-GB memory"
            return (
                f"memory of {offer.gpu_memory_gb:g} GB per GPU is more than the {spec.name} has ({largest}); "
                "a size in MiB or MB read as GB?"
            )
        price = offer.price_per_hour
        if price is None:
            return None
        per_gpu = offer.price_per_gpu_hour
        assert per_gpu is not None
        band = None if spec is None else price_band(spec, offer.gpu_memory_gb)
        if band is not None and spec is not None and not band.holds(per_gpu):
            side = "below" if per_gpu < band.low else "above"
            return (
                f"${price_text(per_gpu)}/GPU-hour is {side} the plausible "
                f"${price_text(band.low)}-${price_text(band.high)} for a {spec.name}; "
                "a price in cents, per month or per GPU read as dollars per hour for the instance?"
            )
        if offer.gpu_count >= SIBLING_MIN_GPUS and offer.gpu_type and single_gpu_prices:
            one = single_gpu_prices.get((offer.gpu_type, offer.spot))
            if one is not None and one / Decimal(SIBLING_TOLERANCE) <= price <= one * Decimal(SIBLING_TOLERANCE):
                return (
                    f"{offer.gpu_count} GPUs for ${price_text(price)}/h, about what this provider charges for one "
                    f"{offer.gpu_type} (${price_text(one)}/h); a per-GPU price taken for the instance's?"
                )
        trusted = self._trusted.get(offer.id)
        if trusted is not None and (price > trusted * MAX_JUMP or price * MAX_JUMP < trusted):
            return (
                f"price moved from ${price_text(trusted)}/h to ${price_text(price)}/h since the last trusted poll, "
                f"more than {MAX_JUMP}x"
            )
        return None


def _single_gpu_prices(offers: list[Offer]) -> dict[tuple[str, bool], Decimal]:
    """The median price of each GPU family's one-GPU offers in a poll, by spot terms."""
    prices: defaultdict[tuple[str, bool], list[Decimal]] = defaultdict(list)
    for offer in offers:
        if offer.gpu_count == 1 and offer.gpu_type and offer.price_per_hour is not None:
            prices[(offer.gpu_type, offer.spot)].append(offer.price_per_hour)
    return {key: statistics.median(values) for key, values in prices.items()}
