"""FluidStack plugin: conformance, per-GPU to per-instance prices, and the recorded configurations."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpubroker.core.adapter import Call, PollContext, Response
from gpubroker.core.errors import ProviderAuthError, ProviderRateLimited
from gpubroker.core.offer import Availability
from gpubroker.core.recordings import Recordings
from gpubroker.core.testkit.conformance import ProviderConformance
from gpubroker.core.testkit.polling import poll_replay
from gpubroker_fluidstack.adapter import FluidStackAdapter, memory_gb

CTX = PollContext(FluidStackAdapter.info, datetime(2026, 11, 26, tzinfo=UTC))
KEY = {"api_key": "fs-test-key-0001"}


class TestFluidStackConformance(ProviderConformance):
    adapter = FluidStackAdapter


def configurations() -> list[dict[str, Any]]:
    assert FluidStackAdapter.recordings is not None
    [exchange] = Recordings(FluidStackAdapter.recordings).exchanges()
    return json.loads(exchange.response.body)


def records() -> list[dict[str, Any]]:
    body = json.dumps(configurations()).encode()
    page = FluidStackAdapter().parse(Response(Call("/list_available_configurations"), 200, {}, body), CTX)
    return [dict(r) for r in page.records]


def test_each_count_and_region_is_one_offer() -> None:
    expected = sum(len(c["gpu_counts"]) * len(c["regions"]) for c in configurations())
    offers = [FluidStackAdapter().normalise(r, CTX) for r in records()]
    assert len(offers) == expected == len({o.id for o in offers if o})
    assert all(o is not None and o.gpu_type and o.availability_status == Availability.AVAILABLE for o in offers)


def test_an_eight_gpu_h100_in_norway() -> None:
    [record] = [
        r
        for r in records()
        if r["configuration"]["gpu_type"] == "H100_SXM5_80GB" and r["gpu_count"] == 8 and r["region"] == "NORWAY"
    ]
    offer = FluidStackAdapter().normalise(record, CTX)
    assert offer is not None
    assert offer.price_per_hour == Decimal("17.2")  # 8 x "2.15"
    assert (offer.gpu_type, offer.gpu_memory_gb, offer.gpu_count) == ("H100", 80.0, 8)
    assert (offer.region, offer.country) == ("NORWAY", "NO")
    assert offer.provider_offer_id == "H100_SXM5_80GB::8::NORWAY"


@given(price=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("50"), places=4), gpus=st.integers(1, 16))
def test_price_per_gpu_string_becomes_the_instance_price(price: Decimal, gpus: int) -> None:
    configuration = {
        "gpu_type": "A100_PCIE_80GB",
        "gpu_counts": [gpus],
        "price_per_gpu_hr": str(price),
        "regions": ["X"],
    }
    offer = FluidStackAdapter().normalise({"configuration": configuration, "gpu_count": gpus, "region": "X"}, CTX)
    assert offer is not None
    assert offer.price_per_hour == (price * gpus).quantize(Decimal("0.000001")).normalize()
    assert offer.price_per_gpu_hour == price.quantize(Decimal("0.000001"))
    assert offer.country is None


@given(size=st.integers(1, 999))
def test_memory_comes_from_the_type_suffix(size: int) -> None:
    assert memory_gb(f"SOME_GPU_{size}GB") == float(size)


def test_types_without_memory_or_gpu() -> None:
    assert memory_gb("T4") is None
    record = {"configuration": {"gpu_type": "NO GPU", "price_per_gpu_hr": "1"}, "gpu_count": 1, "region": "CANADA"}
    assert FluidStackAdapter().normalise(record, CTX) is None


def test_a_malformed_price_is_refused() -> None:
    record = {"configuration": {"gpu_type": "L40S_48GB", "price_per_gpu_hr": "n/a"}, "gpu_count": 1, "region": "NORWAY"}
    with pytest.raises(ValueError):
        FluidStackAdapter().normalise(record, CTX)


@pytest.mark.asyncio
async def test_the_key_is_sent_in_the_api_key_header(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(FluidStackAdapter)
    assert await poll_replay(FluidStackAdapter, server, credentials=KEY)
    assert server.requests[0].headers["api-key"] == "fs-test-key-0001"
    assert "Authorization" not in server.requests[0].headers


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "scenario, error", [("unauthorised", ProviderAuthError), ("rate_limited", ProviderRateLimited)]
)
async def test_recorded_errors_are_typed(replay_server, scenario: str, error: type[Exception]) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(FluidStackAdapter)
    server.scenario = scenario
    with pytest.raises(error):
        await poll_replay(FluidStackAdapter, server, credentials=KEY)
