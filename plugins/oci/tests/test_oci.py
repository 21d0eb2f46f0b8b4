"""OCI plugin: per-GPU part prices become per-shape offers; licences and appliances are not offers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpubroker.core.adapter import PollContext
from gpubroker.core.errors import ProviderHTTPError
from gpubroker.core.recordings import Recordings
from gpubroker.core.testkit.conformance import ProviderConformance
from gpubroker.core.testkit.polling import poll_replay
from gpubroker_oci.adapter import OciAdapter, gpu_hour_usd
from gpubroker_oci.shapes import SHAPES_BY_PART

CTX = PollContext(OciAdapter.info, datetime(2026, 11, 26, tzinfo=UTC))


class TestOciConformance(ProviderConformance):
    adapter = OciAdapter


def recorded_items() -> list[dict[str, Any]]:
    assert OciAdapter.recordings is not None
    [exchange] = Recordings(OciAdapter.recordings).exchanges()
    return json.loads(exchange.response.body)["items"]


async def offers_by_name(replay_server) -> dict:  # type: ignore[no-untyped-def]
    return {offer.name: offer for offer in await poll_replay(OciAdapter, replay_server(OciAdapter))}


async def test_one_offer_per_mapped_shape(replay_server) -> None:  # type: ignore[no-untyped-def]
    offers = await offers_by_name(replay_server)
    parts = {item["partNumber"] for item in recorded_items()}
    expected = {shape.name for part, shapes in SHAPES_BY_PART.items() if part in parts for shape in shapes}
    assert set(offers) == expected
    assert all(offer.region == "global" and offer.country is None for offer in offers.values())


async def test_shape_price_is_gpu_hour_price_times_gpus(replay_server) -> None:  # type: ignore[no-untyped-def]
    offers = await offers_by_name(replay_server)
    h100 = offers["BM.GPU.H100.8"]
    assert (h100.price_per_hour, h100.gpu_type, h100.gpu_count, h100.gpu_memory_gb) == (Decimal(80), "H100", 8, 80)
    a10 = offers["VM.GPU.A10.2"]
    assert (a10.price_per_hour, a10.gpu_type, a10.vcpus, a10.ram_gb) == (Decimal(4), "A10", 60, 480)
    assert offers["VM.GPU2.1"].price_per_hour == Decimal("1.275")
    assert offers["BM.GPU.MI300X.8"].gpu_vendor == "amd"
    assert offers["BM.GPU.GB200.4"].cpu_arch == "arm64"


async def test_licences_appliances_and_unmapped_parts_are_not_offers(replay_server) -> None:  # type: ignore[no-untyped-def]
    offers = await poll_replay(OciAdapter, replay_server(OciAdapter))
    ids = {offer.provider_offer_id.split("/")[0] for offer in offers}
    assert not ids & {"B111824", "B110965", "B108806", "B109480", "B93113"}


async def test_request_asks_for_usd_without_credentials(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(OciAdapter)
    await poll_replay(OciAdapter, server)
    [request] = server.requests
    assert request.path == "/pls/apex/cetools/api/v1/products/"
    assert request.query == {"currencyCode": "USD"}
    assert "Authorization" not in request.headers


async def test_recorded_bad_request_is_an_http_error(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(OciAdapter)
    server.scenario = "bad_request"
    with pytest.raises(ProviderHTTPError):
        await poll_replay(OciAdapter, server)


def _item(value: object, currency: str = "USD", model: str = "PAY_AS_YOU_GO") -> dict[str, Any]:
    return {
        "partNumber": "B98415", "displayName": "Compute - GPU - H100", "metricName": "GPU Per Hour",
        "serviceCategory": "Compute - GPU", "_gpubroker_shape": "BM.GPU.H100.8",
        "currencyCodeLocalizations": [{"currencyCode": currency, "prices": [{"model": model, "value": value}]}],
    }  # fmt: skip


@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100"), places=4))
def test_per_gpu_price_scales_to_the_whole_shape(price: Decimal) -> None:
    offer = OciAdapter().normalise(_item(float(price)), CTX)
    assert offer is not None
    assert offer.price_per_hour == (price * 8).quantize(Decimal("0.000001")).normalize()
    assert offer.price_per_gpu_hour == price.quantize(Decimal("0.000001"))


def test_a_non_usd_price_is_converted_not_assumed() -> None:
    from gpubroker.core import fx

    assert gpu_hour_usd(_item(10, "EUR")["currencyCodeLocalizations"]) == fx.to_usd(Decimal(10), "EUR")


@pytest.mark.parametrize(
    "item",
    [_item(0), _item(-1), _item("x"), _item(10, model="ANNUAL_COMMIT"), {**_item(1), "currencyCodeLocalizations": []}],
)
def test_malformed_prices_are_refused(item: dict[str, Any]) -> None:
    with pytest.raises((ValueError, KeyError)):
        OciAdapter().normalise(item, CTX)


def test_every_mapped_shape_names_a_catalogued_gpu() -> None:
    from gpubroker.core.gpus import resolve

    for shapes in SHAPES_BY_PART.values():
        for shape in shapes:
            assert resolve(shape.gpu_name).gpu_type is not None, shape
