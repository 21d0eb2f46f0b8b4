"""An uncached query (filter + sort + first page) over 100,000 offers: the gateway's columnar
engine against a plain-Python list filter of the kind gpuhunt uses, in one run.

    .venv/bin/python bench/query.py [--offers 100000] [--repeat 20]

The project side is the real path of a cache miss: filter the catalogue snapshot, find the
first page of 50 in the query's order and render it from the offers' pre-rendered JSON. The
full order that the next pages' cursor needs is pinned just after the answer (in a thread, off
the event loop); its cost is reported in its own column. The baseline keeps the same offers as Python objects,
checks every constraint offer by offer (``matches(item, query)``), sorts the matches by the key
and renders the first page. Both answer the same queries and must return the same offers.
Goals: at least 20 times faster than the baseline, and at most 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpubroker.core.cache import TwoTierCache
from gpubroker.core.geo import continent
from gpubroker.core.gpus import resolve
from gpubroker.core.offer import Availability, Offer, offer_id
from gpubroker.gateway.catalog.filters import OfferFilters
from gpubroker.gateway.catalog.index import OfferIndex
from gpubroker.gateway.catalog.paging import Pager
from gpubroker.gateway.catalog.performance import performance_tflops
from gpubroker.gateway.catalog.query import OfferQuery
from gpubroker.gateway.catalog.store import Catalog

GPUS = ["H100 SXM5 80GB", "A100-SXM4-80GB", "RTX 4090", "L40S", "H200", "MI300X", "L4", "RTX A6000", "A10G", "V100"]
PROVIDERS = ["aws", "azure", "gcp", "vastai", "runpod", "lambdalabs", "tensordock", "datacrunch", "vultr", "oci"]
REGIONS = [("us-east-1", "US"), ("us-west-2", "US"), ("eu-central-1", "DE"), ("eu-west-2", "GB"), ("ap-south-1", "IN")]
PAGE = 50


def catalogue(size: int) -> list[Offer]:
    rng = random.Random(7)
    now = datetime(2026, 11, 26, tzinfo=UTC)
    offers = []
    for i in range(size):
        gpu = rng.choice(GPUS)
        match = resolve(gpu)
        region, country = rng.choice(REGIONS)
        count = rng.choice([1, 1, 2, 4, 8])
        offers.append(
            Offer(
                id=offer_id("bench", str(i)),
                provider=rng.choice(PROVIDERS),
                provider_offer_id=str(i),
                name=f"{count}x {gpu}",
                gpu_name=gpu,
                gpu_type=match.gpu_type,
                gpu_vendor=match.spec.vendor if match.spec else None,
                gpu_count=count,
                gpu_memory_gb=float(match.memory_gb or 24),
                vcpus=float(rng.choice([4, 8, 16, 32, 64, 128])),
                ram_gb=float(rng.choice([16, 64, 128, 512, 1024])),
                storage_gb=float(rng.choice([100, 500, 2000])),
                price_per_hour=None if rng.random() < 0.02 else Decimal(rng.randint(10, 40000)) / 1000 * count,
                spot=rng.random() < 0.3,
                availability_status=rng.choice(list(Availability)),
                region=region,
                country=country,
                last_updated=now,
            )
        )
    return offers


@dataclass(frozen=True)
class Case:
    name: str
    query: OfferQuery
    matches: Callable[[Offer], bool]
    key: Callable[[Offer], tuple[object, ...]]


def by_price(offer: Offer) -> tuple[object, ...]:
    return (offer.price_per_hour is None, offer.price_per_hour or 0, offer.id)


def by_price_per_gpu(offer: Offer) -> tuple[object, ...]:
    price = offer.price_per_hour
    return (price is None, 0 if price is None else float(price) / offer.gpu_count, offer.id)


def by_value(offer: Offer) -> tuple[object, ...]:
    """Most TFLOPS per dollar first; the baseline looks the figures up per offer, as it must."""
    performance, price = performance_tflops(offer), offer.price_per_hour
    if performance is None or price is None:
        return (True, 0.0, offer.id)
    return (False, -performance / float(price), offer.id)


def cases() -> list[Case]:
    def filters(**fields: object) -> OfferFilters:
        return OfferFilters(**fields)  # type: ignore[arg-type]

    return [
        Case(
            "8x H100, cheapest",
            OfferQuery(filters(gpu_types=frozenset({"H100"}), ranges=(("gpu_count", 8, None),))),
            lambda o: o.gpu_type == "H100" and o.gpu_count >= 8,
            by_price,
        ),
        Case(
            "US, <= $2/GPU-h, per-GPU price",
            OfferQuery(
                filters(region_prefixes=frozenset({"us-"}), ranges=(("price_per_gpu", None, 2.0),)), "price_per_gpu"
            ),
            lambda o: (
                o.region.lower().startswith("us-")
                and o.price_per_hour is not None
                and float(o.price_per_hour) / o.gpu_count <= 2.0
            ),
            by_price_per_gpu,
        ),
        Case(
            "everything, cheapest",
            OfferQuery(filters()),
            lambda o: True,
            by_price,
        ),
        Case(
            "Europe, >= 48 GB, available, on-demand, best value",
            OfferQuery(
                filters(
                    continents=frozenset({"europe"}),
                    availability=frozenset({"available"}),
                    spot=False,
                    ranges=(("gpu_memory", 48.0, None),),
                ),
                "value",
            ),
            lambda o: (
                continent(o.country) == "europe"
                and o.availability_status == Availability.AVAILABLE
                and not o.spot
                and o.gpu_memory_gb is not None
                and o.gpu_memory_gb >= 48
            ),
            by_value,
        ),
    ]


def baseline(offers: list[Offer], case: Case) -> bytes:
    page = sorted((o for o in offers if case.matches(o)), key=case.key)[:PAGE]
    return orjson.dumps({"items": [o.to_json() for o in page]})


async def project(pager: Pager, index: OfferIndex, case: Case) -> bytes:
    page = await pager.page(index, case.query, None)
    return orjson.dumps({"items": [orjson.Fragment(item) for item in page.rendered]})


def timed(run: Callable[[], object], repeat: int, after: Callable[[], object] = lambda: None) -> tuple[float, object]:
    timings, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        timings.append(time.perf_counter() - started)
        after()
    return statistics.median(timings) * 1000, result


async def pinned(pager: Pager) -> None:
    """Wait for the order the first page pinned for its cursor (computed after the answer)."""
    while pager._pinning:
        await asyncio.sleep(0)


def main(size: int, repeat: int) -> None:
    offers = catalogue(size)
    catalog = Catalog()
    started = time.perf_counter()
    for offer in offers:
        catalog.apply_offer(offer.id, offer)
    ingest_s = time.perf_counter() - started
    catalog.build_index()  # the first snapshot also sorts the offer ids; later ones reuse that order
    build_ms, index = timed(catalog.build_index, 5)
    assert isinstance(index, OfferIndex)
    loop = asyncio.new_event_loop()
    per_offer_us = ingest_s / size * 1e6
    print(f"{size:,} offers; ingest {per_offer_us:.0f} us/offer; re-snapshot after price moves {build_ms:.1f} ms\n")
    print("| query | matches | gpubroker ms | plain-Python list filter ms | speed-up | pinning the order after, ms |")
    print("|---|---|---|---|---|---|")
    for case in cases():
        pager = Pager(TwoTierCache(), b"bench")  # a fresh cache: every run is a miss
        pin_ms, _ = timed(lambda p=pager, c=case: loop.run_until_complete(_page_and_pin(p, index, c)), repeat)
        ours_ms, ours = timed(
            lambda p=pager, c=case: loop.run_until_complete(project(p, index, c)),
            repeat,
            after=lambda p=pager: loop.run_until_complete(pinned(p)),
        )
        theirs_ms, theirs = timed(lambda c=case: baseline(offers, c), max(2, repeat // 10))
        assert [i["id"] for i in orjson.loads(ours)["items"]] == [i["id"] for i in orjson.loads(theirs)["items"]]
        matches = int(case.query.filters.mask(index).sum())
        print(
            f"| {case.name} | {matches:,} | {ours_ms:.2f} | {theirs_ms:.1f} | {theirs_ms / ours_ms:.0f}x "
            f"| {max(pin_ms - ours_ms, 0):.1f} |"
        )


async def _page_and_pin(pager: Pager, index: OfferIndex, case: Case) -> None:
    await project(pager, index, case)
    await pinned(pager)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--offers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    main(args.offers, args.repeat)
