"""DeepInfra plugin: the conformance suite, gpu_config reading, prices and auth."""

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
from gpubroker.core.offer import Availability, Offer
from gpubroker.core.recordings import Recordings
from gpubroker.core.testkit.conformance import ProviderConformance
from gpubroker.core.testkit.polling import poll_replay
from gpubroker_deepinfra.adapter import PATH, DeepInfraAdapter, split_config

CTX = PollContext(DeepInfraAdapter.info, datetime(2026, 11, 26, tzinfo=UTC))
TOKEN = {"api_key": "di-test-token-0123"}
GPU_NAMES = ["A100-80GB", "H100-80GB", "H200-141GB", "B200-180GB", "B300-270GB", "RTXPRO6000-96GB", "L40S-48GB"]


class TestDeepInfraConformance(ProviderConformance):
    adapter = DeepInfraAdapter


def recorded_gpus() -> list[dict[str, Any]]:
    assert DeepInfraAdapter.recordings is not None
    [exchange] = Recordings(DeepInfraAdapter.recordings).exchanges()
    return json.loads(exchange.response.body)["gpus"]


async def poll(server: Any) -> list[Offer]:
    return await poll_replay(DeepInfraAdapter, server, credentials=TOKEN)


async def test_every_configuration_is_an_offer(replay_server) -> None:  # type: ignore[no-untyped-def]
    offers = await poll(replay_server(DeepInfraAdapter))
    assert sorted(o.provider_offer_id for o in offers) == sorted(g["gpu_config"] for g in recorded_gpus())
    assert all(o.gpu_type is not None and o.region == "unknown" for o in offers)


async def test_an_8x_h100_comes_out_right(replay_server) -> None:  # type: ignore[no-untyped-def]
    offer = {o.provider_offer_id: o for o in await poll(replay_server(DeepInfraAdapter))}["8xH100-80GB"]
    assert (offer.gpu_type, offer.gpu_count, offer.gpu_memory_gb, offer.gpu_name) == ("H100", 8, 80, "H100-80GB")
    assert offer.price_per_hour == Decimal("13.52")
    assert offer.price_per_gpu_hour == Decimal("1.69")
    assert offer.availability_status == Availability.AVAILABLE


async def test_unavailable_configurations_are_kept_as_unavailable(replay_server) -> None:  # type: ignore[no-untyped-def]
    offers = {o.provider_offer_id: o for o in await poll(replay_server(DeepInfraAdapter))}
    assert offers["8xB300-270GB"].availability_status == Availability.UNAVAILABLE
    assert (offers["8xB300-270GB"].gpu_type, offers["8xB300-270GB"].gpu_memory_gb) == ("B300", 270)
    assert offers["1xRTXPRO6000-96GB"].gpu_type == "RTX PRO 6000"


async def test_the_token_is_a_bearer_token(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(DeepInfraAdapter)
    await poll(server)
    [request] = server.requests
    assert (request.method, request.path) == ("GET", PATH)
    assert request.headers["Authorization"] == f"Bearer {TOKEN['api_key']}"


@pytest.mark.parametrize(
    "scenario, error", [("unauthorised", ProviderAuthError), ("rate_limited", ProviderRateLimited)]
)
async def test_recorded_errors_are_typed(replay_server, scenario: str, error: type[Exception]) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(DeepInfraAdapter)
    server.scenario = scenario
    with pytest.raises(error):
        await poll(server)


@given(
    count=st.integers(1, 99),
    gpu=st.sampled_from(GPU_NAMES),
    spelling=st.sampled_from(["{n}x{g}", "{n}X{g}", "{n} x {g}"]),
)
def test_config_count_and_gpu(count: int, gpu: str, spelling: str) -> None:
    assert split_config(spelling.format(n=count, g=gpu)) == (count, gpu)
    assert split_config(gpu) == (1, gpu)


@given(
    price=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000"), places=4),
    count=st.integers(1, 8),
    available=st.booleans(),
)
def test_usd_per_hour_is_the_configurations_price(price: Decimal, count: int, available: bool) -> None:
    record = {"gpu_config": f"{count}xH200-141GB", "usd_per_hour": float(price), "available": available}
    offer = DeepInfraAdapter().normalise(record, CTX)
    assert offer is not None
    assert abs(offer.price_per_hour - price) <= Decimal("0.000001")  # type: ignore[operator]
    assert offer.gpu_count == count
    assert offer.availability_status == (Availability.AVAILABLE if available else Availability.UNAVAILABLE)


@pytest.mark.parametrize(
    "record",
    [
        {"gpu_config": "1xH100-80GB", "usd_per_hour": 0, "available": True},
        {"gpu_config": "1xH100-80GB", "usd_per_hour": "n/a", "available": True},
        {"gpu_config": "1xH100-80GB", "usd_per_hour": 1.69, "available": "yes"},
        {"gpu_config": "0xH100-80GB", "usd_per_hour": 1.69, "available": True},
        {"gpu_config": "", "usd_per_hour": 1.69, "available": True},
    ],
)
def test_malformed_records_are_refused(record: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        DeepInfraAdapter().normalise(record, CTX)


def test_an_answer_without_gpus_is_refused() -> None:
    with pytest.raises(KeyError):
        DeepInfraAdapter().parse(Response(Call(PATH), 200, {}, b'{"error": "x"}', "deepinfra"), CTX)
