"""Lambda Cloud plugin: one offer per (instance type, region with capacity), cents, GPU memory, auth."""

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
from gpubroker.core.renting import RentalRequest, rental_tag
from gpubroker.core.testkit.conformance import ProviderConformance
from gpubroker.core.testkit.polling import poll_replay
from gpubroker_lambdalabs.adapter import LambdaCloudAdapter, gpu_memory_gb, region_country
from gpubroker_lambdalabs.emulator import LambdaDialect

CTX = PollContext(LambdaCloudAdapter.info, datetime(2026, 11, 26, tzinfo=UTC))


class TestLambdaCloudConformance(ProviderConformance):
    adapter = LambdaCloudAdapter
    rental_request = RentalRequest(
        tag=rental_tag("conformance"),
        provider_offer_id="gpu_1x_a100_sxm4/us-east-1",
        gpu_count=1,
        options={"ssh_key_name": "ops"},
    )
    rental_instance_id = "0920582c7ff041399e34823a0be62549"
    emulator = LambdaDialect


def recorded_body() -> dict[str, Any]:
    assert LambdaCloudAdapter.recordings is not None
    [exchange] = Recordings(LambdaCloudAdapter.recordings).exchanges("default")
    return json.loads(exchange.response.body)


def parse(body: dict[str, Any]) -> list[dict[str, Any]]:
    response = Response(Call("/api/v1/instance-types"), 200, {}, json.dumps(body).encode(), "lambdalabs")
    return [dict(r) for r in LambdaCloudAdapter().parse(response, CTX).records]


def offers_by_id() -> dict[str, Any]:
    offers = [LambdaCloudAdapter().normalise(r, CTX) for r in parse(recorded_body())]
    return {o.provider_offer_id: o for o in offers if o is not None}


def test_one_offer_per_region_with_capacity_and_none_for_cpu_or_sold_out_types() -> None:
    offers = offers_by_id()
    assert len(offers) == 18
    assert not any(key.startswith("cpu_4x_general") for key in offers)
    assert not any(key.startswith("gpu_8x_b200_sxm6") for key in offers)  # capacity in no region
    assert {o.availability_status for o in offers.values()} == {Availability.AVAILABLE}


def test_a_recorded_instance_type_comes_out_right() -> None:
    offer = offers_by_id()["gpu_8x_h100_sxm5/us-south-1"]
    assert offer.name == "gpu_8x_h100_sxm5"
    assert offer.price_per_hour == Decimal("23.92")  # 2392 cents for the whole instance
    assert offer.price_per_gpu_hour == Decimal("2.99")
    assert offer.gpu_name == "H100 (80 GB SXM5)"
    assert (offer.gpu_type, offer.gpu_count, offer.gpu_memory_gb) == ("H100", 8, 80.0)
    assert (offer.vcpus, offer.ram_gb, offer.storage_gb) == (208, 1800, 22528)
    assert offer.region == "us-south-1" and offer.country == "US"


def test_gh200_is_arm_and_non_us_regions_have_their_country() -> None:
    offers = offers_by_id()
    assert offers["gpu_1x_gh200/us-east-1"].cpu_arch == "arm64"
    assert offers["gpu_1x_h100_sxm5/us-east-1"].cpu_arch is None
    assert offers["gpu_1x_a6000/europe-central-1"].country == "DE"
    assert offers["gpu_1x_a6000/europe-central-1"].gpu_type == "RTX A6000"
    assert offers["gpu_1x_h100_pcie/asia-northeast-1"].country == "JP"


def test_a_stated_architecture_wins() -> None:
    record = parse(recorded_body())[0]
    record["instance_type"] = {**record["instance_type"], "architecture": "aarch64"}
    offer = LambdaCloudAdapter().normalise(record, CTX)
    assert offer is not None and offer.cpu_arch == "arm64"


@pytest.mark.parametrize(
    "description, memory",
    [("H100 (80 GB SXM5)", 80.0), ("RTX A6000 (48 GB)", 48.0), ("GH200 (96 GB)", 96.0), ("N/A", None)],
)
def test_gpu_memory_from_the_description(description: str, memory: float | None) -> None:
    assert gpu_memory_gb(description) == memory


@pytest.mark.parametrize("region, country", [("us-west-3", "US"), ("me-west-1", "IL"), ("mars-1", None)])
def test_region_country(region: str, country: str | None) -> None:
    assert region_country(region) == country


@given(cents=st.integers(1, 10**6), gpus=st.integers(1, 16), memory=st.integers(8, 300))
def test_cents_per_instance_hour_become_dollars(cents: int, gpus: int, memory: int) -> None:
    kind = {
        "name": "gpu_nx_test", "description": "test", "gpu_description": f"H100 ({memory} GB SXM5)",
        "price_cents_per_hour": cents, "specs": {"vcpus": 8, "memory_gib": 64, "storage_gib": 512, "gpus": gpus},
    }  # fmt: skip
    offer = LambdaCloudAdapter().normalise({"instance_type": kind, "region": {"name": "us-east-1"}}, CTX)
    assert offer is not None
    assert offer.price_per_hour == Decimal(cents) / 100
    assert offer.gpu_count == gpus and offer.gpu_memory_gb == memory


def test_an_answer_without_data_is_refused() -> None:
    with pytest.raises(KeyError):
        parse({"error": {"code": "global/unknown"}})


async def test_api_key_is_sent_as_bearer_token(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(LambdaCloudAdapter)
    await poll_replay(LambdaCloudAdapter, server, credentials={"api_key": "secret_lambda_key"})
    [request] = server.requests
    assert (request.method, request.path) == ("GET", "/api/v1/instance-types")
    assert request.headers["Authorization"] == "Bearer secret_lambda_key"


@pytest.mark.parametrize(
    "scenario, error", [("unauthorised", ProviderAuthError), ("rate_limited", ProviderRateLimited)]
)
async def test_recorded_error_answers_are_typed(replay_server, scenario: str, error: type[Exception]) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(LambdaCloudAdapter)
    server.scenario = scenario
    with pytest.raises(error):
        await poll_replay(LambdaCloudAdapter, server, credentials={"api_key": "k"})
