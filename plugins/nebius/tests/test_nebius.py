"""Nebius plugin: platform presets per region from PlatformService/List (proto3 JSON), no prices."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpubroker.core.adapter import PollContext, Response
from gpubroker.core.errors import ProviderAuthError, ProviderRateLimited
from gpubroker.core.offer import Availability
from gpubroker.core.testkit.conformance import ProviderConformance
from gpubroker.core.testkit.polling import poll_replay
from gpubroker_nebius.adapter import LIST_PLATFORMS, REGIONS, NebiusAdapter, gpu_memory_gb, list_call

CTX = PollContext(NebiusAdapter.info, datetime(2026, 11, 26, tzinfo=UTC))
TOKEN = {"iam_token": "nebius-iam-token-0123"}
RECORDED_ERRORS = [("unauthorised", ProviderAuthError), ("rate_limited", ProviderRateLimited)]


class TestNebiusConformance(ProviderConformance):
    adapter = NebiusAdapter
    publishes_prices = False


def recorded(name: str) -> dict:  # type: ignore[type-arg]
    assert NebiusAdapter.recordings is not None
    return json.loads(NebiusAdapter.recordings.joinpath(name).read_bytes())


def parse(code: str, body: object) -> list:  # type: ignore[type-arg]
    response = Response(list_call(code), 200, {}, json.dumps(body).encode(), "nebius")
    return NebiusAdapter().parse(response, CTX).records


@pytest.mark.asyncio
async def test_default_scenario_lists_gpu_presets_of_every_region(replay_server) -> None:  # type: ignore[no-untyped-def]
    offers = await poll_replay(NebiusAdapter, replay_server(NebiusAdapter), credentials=TOKEN)
    by_region: dict[str, int] = {}
    for offer in offers:
        by_region[offer.region] = by_region.get(offer.region, 0) + 1
    assert by_region == {"eu-north1": 9, "eu-west1": 2, "us-central1": 3}
    assert {o.gpu_type for o in offers} == {"H100", "H200", "B200", "L40S"}
    assert all(o.price_per_hour is None and o.availability_status == Availability.AVAILABLE for o in offers)


@pytest.mark.asyncio
async def test_a_recorded_h200_node(replay_server) -> None:  # type: ignore[no-untyped-def]
    offers = await poll_replay(NebiusAdapter, replay_server(NebiusAdapter), credentials=TOKEN)
    [offer] = [o for o in offers if o.provider_offer_id == "us-central1/gpu-h200-sxm/8gpu-128vcpu-1600gb"]
    assert (offer.gpu_type, offer.gpu_count, offer.gpu_memory_gb) == ("H200", 8, 141.0)
    assert (offer.vcpus, offer.ram_gb, offer.country) == (128, 1600, "US")
    assert offer.name == "gpu-h200-sxm 8gpu-128vcpu-1600gb"


@pytest.mark.asyncio
async def test_calls_are_grpc_paths_with_bearer_token_and_follow_page_tokens(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(NebiusAdapter)
    await poll_replay(NebiusAdapter, server, credentials=TOKEN)
    assert all(r.method == "POST" and r.path == LIST_PLATFORMS for r in server.requests)
    assert all(r.headers["Authorization"] == "Bearer nebius-iam-token-0123" for r in server.requests)
    bodies = [json.loads(r.body) for r in server.requests]
    assert sorted(b["parentId"] for b in bodies) == [
        "project-e00public-images",
        "project-e00public-images",
        "project-e01public-images",
        "project-u00public-images",
    ]
    assert {"parentId": "project-e00public-images", "pageSize": "100", "pageToken": "Y3B1LWQzfGdwdS1sNDBzLWE"} in bodies


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "scenario, error", [("unauthorised", ProviderAuthError), ("rate_limited", ProviderRateLimited)]
)
async def test_recorded_errors_are_typed(replay_server, scenario: str, error: type[Exception]) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(NebiusAdapter)
    server.scenario = scenario
    with pytest.raises(error):
        await poll_replay(NebiusAdapter, server, credentials=TOKEN)


def test_every_preset_is_a_record_and_cpu_presets_are_not_offers() -> None:
    records = parse("e01", recorded("platforms_e01.json"))
    assert [r["region"] for r in records] == ["eu-west1"] * len(records)
    offers = [NebiusAdapter().normalise(r, CTX) for r in records]
    assert sum(o is not None for o in offers) == 2
    assert all(o is None for o, r in zip(offers, records, strict=True) if r["platform"]["metadata"]["name"] == "cpu-d3")


def test_the_last_page_has_no_follow_up() -> None:
    response = Response(list_call("u00"), 200, {}, json.dumps(recorded("platforms_u00.json")).encode(), "nebius")
    assert NebiusAdapter().parse(response, CTX).follow == []


def test_an_empty_answer_is_an_empty_message() -> None:
    assert parse("e00", {}) == []


def test_regions_are_the_public_images_projects() -> None:
    assert [list_call(code).json["parentId"] for code in REGIONS] == [
        "project-e00public-images",
        "project-e01public-images",
        "project-u00public-images",
    ]


@given(
    gpus=st.integers(0, 16),
    vcpus=st.integers(1, 256),
    memory=st.integers(1, 4096),
    gpu_memory=st.one_of(st.none(), st.integers(1, 300)),
)
def test_preset_resources_become_the_offer(gpus: int, vcpus: int, memory: int, gpu_memory: int | None) -> None:
    resources = {"vcpuCount": vcpus, "memoryGibibytes": memory} | ({"gpuCount": gpus} if gpus else {})
    spec = {"gpuMemoryGigabytes": gpu_memory} if gpu_memory else {}
    record = {
        "region": "eu-north1",
        "platform": {"metadata": {"name": "gpu-h100-sxm"}, "spec": spec},
        "preset": {"name": "p", "resources": resources},
    }
    offer = NebiusAdapter().normalise(record, CTX)
    if gpus == 0:
        assert offer is None
        return
    assert offer is not None
    assert (offer.gpu_count, offer.vcpus, offer.ram_gb) == (gpus, vcpus, memory)
    assert offer.gpu_memory_gb == (float(gpu_memory) if gpu_memory else 80)  # else the catalogue's H100 SXM
    assert offer.price_per_hour is None


def test_gpu_memory_prefers_the_current_field() -> None:
    assert gpu_memory_gb({"gpuMemoryGigabytes": 141, "gpuMemoryGibibytes": 131}) == 141.0
    assert gpu_memory_gb({"gpuMemoryGibibytes": 80}) == 80.0
    assert gpu_memory_gb({}) is None
