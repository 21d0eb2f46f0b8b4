"""The columnar query engine against a brute-force reference on generated catalogues."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpubroker.core.cache import TwoTierCache
from gpubroker.core.geo import continent
from gpubroker.core.gpus import CATALOG, resolve
from gpubroker.core.offer import INTERCONNECTS, Availability, Offer, offer_id
from gpubroker.gateway.catalog import ranking
from gpubroker.gateway.catalog.filters import RANGES, OfferFilters
from gpubroker.gateway.catalog.paging import Pager
from gpubroker.gateway.catalog.performance import performance_tflops
from gpubroker.gateway.catalog.query import SORTS, OfferQuery, matching, ordered
from gpubroker.gateway.catalog.rows import AVAILABILITY_SCORE
from gpubroker.gateway.catalog.store import Catalog
from tests.core.test_topsis import reference as topsis_reference
from tests.gateway.conftest import NOW

PROVIDERS = ["aws", "vastai", "runpod", "lambdalabs"]
GPUS = ["H100 SXM5 80GB", "A100-SXM4-40GB", "RTX 4090", "L40S", "MI300X", "Mystery X1"]
REGIONS = ["us-east-1", "us-west-2", "eu-central-1", "EU-West", "ap-southeast-1"]
TAGS = ["soc2", "hipaa", "gdpr"]


@st.composite
def offers(draw: st.DrawFn, provider: str, sku: int) -> Offer:
    gpu = draw(st.sampled_from(GPUS))
    price = draw(st.none() | st.decimals(Decimal("0.05"), Decimal("40"), places=3))
    match = resolve(gpu)
    return Offer(
        id=offer_id(provider, str(sku)),
        provider=provider,
        provider_offer_id=str(sku),
        name=f"{gpu} #{sku}",
        gpu_name=gpu,
        gpu_type=match.gpu_type,
        gpu_vendor=match.spec.vendor if match.spec else None,
        gpu_count=draw(st.sampled_from([1, 2, 4, 8])),
        gpu_memory_gb=draw(st.none() | st.sampled_from([24.0, 40.0, 48.0, 80.0, 192.0])),
        vcpus=draw(st.none() | st.sampled_from([4.0, 8.0, 16.0, 32.0, 96.0])),
        ram_gb=draw(st.none() | st.sampled_from([16.0, 64.0, 256.0, 1024.0])),
        storage_gb=draw(st.none() | st.sampled_from([100.0, 500.0, 2000.0])),
        cpu_arch=draw(st.none() | st.sampled_from(["x86_64", "arm64"])),
        price_per_hour=price,
        spot=draw(st.booleans()),
        availability_status=draw(st.sampled_from(list(Availability))),
        region=draw(st.sampled_from(REGIONS)),
        country=draw(st.none() | st.sampled_from(["US", "DE", "JP", "BR", "AU"])),
        compliance_tags=tuple(draw(st.lists(st.sampled_from(TAGS), unique=True, max_size=2))),
        resold_from=draw(st.none() | st.just("aws")),
        interconnect=tuple(draw(st.lists(st.sampled_from(INTERCONNECTS), unique=True, max_size=3))),
        quarantined=draw(st.none() | st.just("implausible")),
        # Ages far from any max_age_s bound drawn below, so the two clocks' readings never straddle one.
        last_updated=datetime.now(UTC) - timedelta(seconds=draw(st.sampled_from([0, 30, 300, 1800, 7200]))),
    )


catalogues = st.lists(st.sampled_from(PROVIDERS), max_size=30).flatmap(
    lambda providers: st.tuples(*(offers(provider, sku) for sku, provider in enumerate(providers)))
)

bounds = st.none() | st.sampled_from([0.5, 1.0, 2.0, 4.0, 8.0, 24.0, 40.0, 80.0, 100.0, 500.0])
filter_sets = st.builds(
    OfferFilters,
    providers=st.frozensets(st.sampled_from(PROVIDERS), max_size=2),
    gpu_types=st.frozensets(st.sampled_from(["H100", "A100", "RTX 4090", "L40S", "MI300X"]), max_size=2),
    vendors=st.frozensets(st.sampled_from(["nvidia", "amd"]), max_size=1),
    regions=st.frozensets(st.sampled_from(["us-east-1", "eu-west", "EU-CENTRAL-1"]), max_size=2),
    region_prefixes=st.frozensets(st.sampled_from(["us-", "eu", "AP"]), max_size=1),
    continents=st.frozensets(st.sampled_from(["europe", "north_america", "asia"]), max_size=2),
    availability=st.frozensets(st.sampled_from([a.value for a in Availability]), max_size=2),
    cpu_archs=st.frozensets(st.sampled_from(["x86_64", "arm64"]), max_size=1),
    compliance=st.frozensets(st.sampled_from([*TAGS, "pci"]), max_size=2),
    spot=st.none() | st.booleans(),
    resold=st.none() | st.booleans(),
    interconnect=st.frozensets(st.sampled_from(INTERCONNECTS), max_size=2),
    max_age_s=st.none() | st.sampled_from([60.0, 600.0, 3600.0]),
    ranges=st.lists(
        st.tuples(st.sampled_from(sorted(RANGES.values())), bounds, bounds).filter(lambda r: r[1:] != (None, None)),
        max_size=3,
    ).map(tuple),
)


def value(offer: Offer, column: str) -> float | None:
    """The plain reading of each column, written independently of the index."""
    price = None if offer.price_per_hour is None else float(offer.price_per_hour)
    performance = performance_tflops(offer)
    memory = offer.gpu_memory_gb
    spec = CATALOG.get(offer.gpu_type) if offer.gpu_type else None
    return {
        "price": price,
        "price_per_gpu": None if price is None else price / offer.gpu_count,
        "gpu_count": offer.gpu_count,
        "gpu_memory": memory,
        "total_memory": None if memory is None else memory * offer.gpu_count,
        "vcpus": offer.vcpus,
        "ram": offer.ram_gb,
        "storage": offer.storage_gb,
        "performance": performance,
        "value": None if performance is None or price is None else performance / price,
        "compute_capability": None if spec is None else spec.compute_capability_number,
    }[column]


def reference_matches(offer: Offer, f: OfferFilters) -> bool:
    checks = [
        not f.providers or offer.provider in f.providers,
        not f.gpu_types or offer.gpu_type in f.gpu_types,
        not f.vendors or offer.gpu_vendor in f.vendors,
        not f.continents or continent(offer.country) in f.continents,
        not f.availability or offer.availability_status.value in f.availability,
        not f.cpu_archs or offer.cpu_arch in f.cpu_archs,
        not (f.regions or f.region_prefixes)
        or offer.region.lower() in {r.lower() for r in f.regions}
        or any(offer.region.lower().startswith(p.lower()) for p in f.region_prefixes),
        set(f.compliance) <= set(offer.compliance_tags),
        f.spot is None or offer.spot == f.spot,
        f.resold is None or (offer.resold_from is not None) == f.resold,
        set(f.interconnect) <= set(offer.interconnect),
        f.max_age_s is None or (datetime.now(UTC) - offer.last_updated).total_seconds() <= f.max_age_s,
    ]
    for column, low, high in f.ranges:
        v = value(offer, column)
        checks.append(v is not None and (low is None or v >= low) and (high is None or v <= high))
    return all(checks)


def reference_order(catalogue: list[Offer], query: OfferQuery) -> list[str]:
    column, sign = {
        "price": ("price", 1),
        "-price": ("price", -1),
        "price_per_gpu": ("price_per_gpu", 1),
        "-price_per_gpu": ("price_per_gpu", -1),
        "performance": ("performance", -1),
        "value": ("value", -1),
    }[query.sort]

    def key(offer: Offer) -> tuple[Any, ...]:
        v = value(offer, column)
        return (1, 0.0, offer.id) if v is None or offer.quarantined else (0, sign * v, offer.id)

    return [o.id for o in sorted((o for o in catalogue if reference_matches(o, query.filters)), key=key)]


def indexed(catalogue: list[Offer] | tuple[Offer, ...]) -> Any:
    catalog = Catalog()
    for item in catalogue:
        catalog.apply_offer(item.id, item)
    return catalog.build_index()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalogues, filter_sets, st.sampled_from([s for s in SORTS if s != "topsis"]))
def test_filters_and_sorts_match_the_brute_force_reference(catalogue, filters, sort) -> None:  # type: ignore[no-untyped-def]
    query = OfferQuery(filters, sort)
    index = indexed(catalogue)
    rows, _ = ordered(index, query)
    assert [index.offers[row].id for row in rows] == reference_order(list(catalogue), query)


@settings(max_examples=80, deadline=None)
@given(catalogues, st.fixed_dictionaries({name: st.floats(0, 5) for name in ranking.DEFAULT_WEIGHTS}))
def test_topsis_sort_equals_a_plain_reference(catalogue, weights) -> None:  # type: ignore[no-untyped-def]
    if not any(weights.values()):
        weights["price"] = 1.0
    index = indexed(catalogue)
    rows, keys = ordered(index, OfferQuery(sort="topsis", weights=weights))
    rankable = [
        o
        for o in sorted(catalogue, key=lambda o: o.id)
        if value(o, "price") and value(o, "performance") and o.quarantined is None
    ]
    expected: dict[str, float] = {}
    if rankable:
        matrix = [
            [
                value(o, "price"),
                value(o, "performance"),
                value(o, "total_memory") or 0.0,
                AVAILABILITY_SCORE[o.availability_status],
            ]
            for o in rankable
        ]
        closeness = topsis_reference(
            matrix, [weights[name] for name in ranking.DEFAULT_WEIGHTS], [False, True, True, True]
        )  # type: ignore[arg-type]
        expected = {o.id: c for o, c in zip(rankable, closeness, strict=True)}
    got = {index.offers[row].id: -float(key) for row, key in zip(rows, keys, strict=True) if not math.isnan(key)}
    assert got.keys() == expected.keys()
    for offer_id_, closeness_ in expected.items():
        assert got[offer_id_] == pytest.approx(closeness_, abs=1e-9)
    assert all(np.diff(keys[~np.isnan(keys)]) >= 0)  # best first, unrankable last
    assert not any(np.isnan(keys[: len(got)]))


@settings(max_examples=60, deadline=None)
@given(catalogues, st.data())
async def test_paging_while_prices_change_yields_every_offer_once(catalogue, data) -> None:  # type: ignore[no-untyped-def]
    catalog = Catalog()
    for item in catalogue:
        catalog.apply_offer(item.id, item)
    pager = Pager(TwoTierCache(), b"key")
    query = OfferQuery(sort=data.draw(st.sampled_from(list(SORTS))), limit=data.draw(st.integers(1, 7)))
    page = await pager.page(catalog.build_index(), query, None)
    seen = [o for o in page.rendered]
    while page.next_cursor is not None:
        for item in data.draw(st.lists(st.sampled_from(catalogue), max_size=5)):  # prices move between pages
            new_price = data.draw(st.decimals(Decimal("0.05"), Decimal("40"), places=3))
            catalog.apply_offer(item.id, item.model_copy(update={"price_per_hour": new_price}))
        page = await pager.page(catalog.build_index(), query, page.next_cursor)
        seen += page.rendered
    ids = [Offer.model_validate_json(rendered).id for rendered in seen]
    assert sorted(ids) == sorted(o.id for o in catalogue)


async def test_an_expired_pin_resumes_after_the_last_offer_seen() -> None:
    catalogue = [offers_fixed(i, f"{i % 7 + 1}.5") for i in range(30)]
    catalog = Catalog()
    for item in catalogue:
        catalog.apply_offer(item.id, item)
    cache = TwoTierCache()
    pager = Pager(cache, b"key")
    query = OfferQuery(limit=4)
    page = await pager.page(catalog.build_index(), query, None)
    seen = list(page.rendered)
    while page.next_cursor is not None:
        while pager._pinning:  # let the pin be written, then lose it
            await asyncio.sleep(0)
        cache._l2.clear()  # the pinned order is gone (expired, or never reached this instance)
        page = await pager.page(catalog.build_index(), query, page.next_cursor)
        assert not page.pinned
        seen += page.rendered
    assert len(seen) == len(set(seen)) == 30


def offers_fixed(i: int, price: str) -> Offer:
    return Offer(
        id=offer_id("vastai", str(i)),
        provider="vastai",
        provider_offer_id=str(i),
        name="x",
        gpu_name="RTX 4090",
        gpu_type="RTX 4090",
        gpu_vendor="nvidia",
        gpu_count=1,
        gpu_memory_gb=24,
        price_per_hour=Decimal(price),
        availability_status=Availability.AVAILABLE,
        region="us",
        last_updated=NOW,
    )


def test_unknown_compliance_tag_matches_nothing_and_empty_catalogue_is_fine() -> None:
    assert matching(indexed([offers_fixed(1, "1")]), OfferQuery(OfferFilters(compliance=frozenset({"x"})))).size == 0
    rows, keys = ordered(indexed([]), OfferQuery(sort="topsis"))
    assert rows.size == keys.size == 0
