"""DigitalOcean plugin: GPU sizes per region, paging by links.pages.next, units and auth."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpubroker.core.adapter import Call, PollContext, Response
from gpubroker.core.errors import ProviderAuthError
from gpubroker.core.offer import Availability
from gpubroker.core.testkit.conformance import ProviderConformance
from gpubroker.core.testkit.polling import poll_replay
from gpubroker_digitalocean.adapter import DigitaloceanAdapter, per_gpu_memory_gb

CTX = PollContext(DigitaloceanAdapter.info, datetime(2026, 11, 26, tzinfo=UTC))
TOKEN = {"api_token": "dop_v1_example"}


class TestDigitaloceanConformance(ProviderConformance):
    adapter = DigitaloceanAdapter


def size(**overrides: Any) -> dict[str, Any]:
    base = {
        "slug": "gpu-h100x8-640gb", "memory": 1966080, "vcpus": 160, "disk": 2046, "transfer": 60.0,
        "price_monthly": 16074.24, "price_hourly": 23.92, "regions": ["nyc2"], "available": True,
        "description": "H100 GPU - 8X",
        "gpu_info": {"count": 8, "vram": {"amount": 640, "unit": "gib"}, "model": "nvidia_h100"},
        "disk_info": [{"type": "local", "size": {"amount": 2046, "unit": "gib"}},
                      {"type": "scratch", "size": {"amount": 40960, "unit": "gib"}}],
    }  # fmt: skip
    return {**base, **overrides}


def normalise_one(record: dict[str, Any]) -> Any:
    page = DigitaloceanAdapter().parse(_response({"sizes": [record], "links": {}, "meta": {"total": 1}}), CTX)
    return [DigitaloceanAdapter().normalise(r, CTX) for r in page.records]


def _response(body: dict[str, Any]) -> Response:
    import orjson

    return Response(Call("/v2/sizes"), 200, {}, orjson.dumps(body), "digitalocean")


async def test_both_pages_are_read_and_each_region_is_an_offer(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(DigitaloceanAdapter)
    offers = await poll_replay(DigitaloceanAdapter, server, credentials=TOKEN)
    assert [r.query["page"] for r in server.requests] == ["1", "2"]
    assert all(r.query["per_page"] == "200" for r in server.requests)
    ids = {o.provider_offer_id for o in offers}
    assert {"gpu-h100x1-80gb/atl1", "gpu-h100x1-80gb/nyc2", "gpu-h100x1-80gb/tor1", "gpu-h200x8-1128gb/atl1"} <= ids
    assert len(offers) == 13  # CPU plans and the MI300X x8 plan that no region offers are not offers


async def test_token_is_sent_as_bearer_on_every_page(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(DigitaloceanAdapter)
    await poll_replay(DigitaloceanAdapter, server, credentials=TOKEN)
    assert {r.headers["Authorization"] for r in server.requests} == {"Bearer dop_v1_example"}


async def test_recorded_h100x8_offer(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(DigitaloceanAdapter)
    offers = {o.provider_offer_id: o for o in await poll_replay(DigitaloceanAdapter, server, credentials=TOKEN)}
    offer = offers["gpu-h100x8-640gb/nyc2"]
    assert (offer.gpu_type, offer.gpu_count, offer.gpu_memory_gb) == ("H100", 8, 80)
    assert offer.price_per_hour == Decimal("23.92")
    assert (offer.vcpus, offer.ram_gb, offer.storage_gb) == (160, 1920, 2046 + 40960)
    assert (offer.region, offer.country, offer.availability_status) == ("nyc2", "US", Availability.AVAILABLE)
    assert offers["gpu-mi300x1-192gb/atl1"].gpu_vendor == "amd"
    assert offers["gpu-4000adax1-20gb/tor1"].gpu_type == "RTX 4000 Ada"


async def test_recorded_unauthorised_answer_is_an_auth_error(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(DigitaloceanAdapter)
    server.scenario = "unauthorised"
    with pytest.raises(ProviderAuthError):
        await poll_replay(DigitaloceanAdapter, server, credentials=TOKEN)


def test_cpu_sizes_and_sizes_without_regions_are_not_offers() -> None:
    assert normalise_one(size(gpu_info=None)) == [None]
    assert normalise_one(size(regions=[], available=False)) == [None]


def test_unavailable_flag_marks_listed_regions_unavailable() -> None:
    [offer] = normalise_one(size(available=False))
    assert offer.availability_status == Availability.UNAVAILABLE


def test_spot_slug_is_a_spot_offer() -> None:
    [offer] = normalise_one(size(slug="gpu-h100x1-80gb-spot", price_hourly=1.0))
    assert offer.spot is True and offer.price_per_hour == Decimal(1)


@given(
    price=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("200"), places=5),
    count=st.sampled_from([1, 2, 4, 8]),
    per_gpu=st.sampled_from([20, 48, 80, 141, 192]),
    memory_mb=st.integers(1, 4096).map(lambda n: n * 1024),
)
def test_price_is_whole_droplet_and_memory_is_per_gpu(price: Decimal, count: int, per_gpu: int, memory_mb: int) -> None:
    gpu = {"count": count, "vram": {"amount": per_gpu * count, "unit": "gib"}, "model": "nvidia_h100"}
    [offer] = normalise_one(size(price_hourly=float(price), gpu_info=gpu, memory=memory_mb))
    assert offer.price_per_hour == price.quantize(Decimal("0.000001")).normalize()
    assert offer.gpu_memory_gb == per_gpu and offer.gpu_count == count
    assert offer.ram_gb == round(memory_mb / 1024, 1)


def test_vram_units() -> None:
    assert per_gpu_memory_gb({"amount": 81920, "unit": "mib"}, 1) == 80
    assert per_gpu_memory_gb(None, 1) is None
    with pytest.raises(ValueError):
        per_gpu_memory_gb({"amount": 80, "unit": "tb"}, 1)


def test_next_link_becomes_a_relative_call() -> None:
    body = {"sizes": [], "links": {"pages": {"next": "https://api.digitalocean.com/v2/sizes?page=3&per_page=200"}}}
    [follow] = DigitaloceanAdapter().parse(_response(body), CTX).follow
    assert (follow.path, dict(follow.params)) == ("/v2/sizes", {"page": "3", "per_page": "200"})
