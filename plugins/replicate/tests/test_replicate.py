"""Replicate plugin: the conformance suite (no prices), SKU -> GPU mapping and auth."""

from __future__ import annotations

import json
from datetime import UTC, datetime
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
from gpubroker_replicate.adapter import PATH, ReplicateAdapter, gpu_count_of

CTX = PollContext(ReplicateAdapter.info, datetime(2026, 11, 26, tzinfo=UTC))
TOKEN = {"api_key": "r8_test_token_0123"}


class TestReplicateConformance(ProviderConformance):
    adapter = ReplicateAdapter
    publishes_prices = False  # the API lists hardware only; prices are on a web page


def recorded_hardware() -> list[dict[str, str]]:
    assert ReplicateAdapter.recordings is not None
    [exchange] = Recordings(ReplicateAdapter.recordings).exchanges()
    return json.loads(exchange.response.body)


async def poll(server: Any) -> list[Offer]:
    return await poll_replay(ReplicateAdapter, server, credentials=TOKEN)


async def test_every_gpu_sku_is_an_unpriced_available_offer(replay_server) -> None:  # type: ignore[no-untyped-def]
    offers = await poll(replay_server(ReplicateAdapter))
    gpu_skus = [h["sku"] for h in recorded_hardware() if h["sku"].startswith("gpu-")]
    assert sorted(o.provider_offer_id for o in offers) == sorted(gpu_skus)
    assert "cpu" not in {o.provider_offer_id for o in offers}
    for offer in offers:
        assert offer.price_per_hour is None and offer.spot_price is None
        assert offer.availability_status == Availability.AVAILABLE
        assert offer.region == "unknown" and offer.country is None


@pytest.mark.parametrize(
    "sku, gpu_type, count, memory",
    [
        ("gpu-t4", "T4", 1, 16),
        ("gpu-a40-large", "A40", 1, 48),
        ("gpu-l40s", "L40S", 1, 48),
        ("gpu-4x-l40s", "L40S", 4, 48),
        ("gpu-a100-large", "A100", 1, 80),
        ("gpu-a100-large-8x", "A100", 8, 80),
        ("gpu-h100", "H100", 1, None),  # the catalogue sells H100 in 80 and 94 GB; Replicate does not say
        ("gpu-h100-2x", "H100", 2, None),
    ],
)
async def test_skus_map_to_gpus(replay_server, sku: str, gpu_type: str, count: int, memory: int | None) -> None:  # type: ignore[no-untyped-def]
    offer = {o.provider_offer_id: o for o in await poll(replay_server(ReplicateAdapter))}[sku]
    assert (offer.gpu_type, offer.gpu_count, offer.gpu_memory_gb, offer.gpu_vendor) == (
        gpu_type,
        count,
        memory,
        "nvidia",
    )
    assert not offer.gpu_name[0].isdigit(), "the count prefix is not part of the GPU name"


async def test_the_token_is_a_bearer_token(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(ReplicateAdapter)
    await poll(server)
    [request] = server.requests
    assert (request.method, request.path) == ("GET", PATH)
    assert request.headers["Authorization"] == f"Bearer {TOKEN['api_key']}"


@pytest.mark.parametrize(
    "scenario, error", [("unauthorised", ProviderAuthError), ("rate_limited", ProviderRateLimited)]
)
async def test_recorded_errors_are_typed(replay_server, scenario: str, error: type[Exception]) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(ReplicateAdapter)
    server.scenario = scenario
    with pytest.raises(error):
        await poll(server)


@given(count=st.integers(1, 64))
def test_count_comes_from_the_name_or_either_sku_spelling(count: int) -> None:
    assert gpu_count_of(f"{count}x Nvidia L40S GPU", "gpu-l40s-custom") == count
    assert gpu_count_of("Nvidia L40S GPU", f"gpu-{count}x-l40s") == count
    assert gpu_count_of("Nvidia A100 (80GB) GPU", f"gpu-a100-large-{count}x") == count
    assert gpu_count_of("Nvidia T4 GPU", "gpu-t4") == 1


@given(sku=st.text(min_size=1, max_size=30).filter(lambda s: not s.startswith("gpu-")))
def test_non_gpu_hardware_is_not_an_offer(sku: str) -> None:
    assert ReplicateAdapter().normalise({"sku": sku, "name": "CPU"}, CTX) is None


def test_a_record_without_sku_is_malformed() -> None:
    with pytest.raises(KeyError):
        ReplicateAdapter().normalise({"name": "Nvidia T4 GPU"}, CTX)


def test_an_answer_that_is_not_a_list_is_refused() -> None:
    response = Response(Call(PATH), 200, {}, b'{"results": []}', "replicate")
    with pytest.raises(ValueError):
        ReplicateAdapter().parse(response, CTX)
