"""Genesis Cloud plugin: hardware read from instance type identifiers, stock counts, no prices."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpubroker.core.adapter import PollContext
from gpubroker.core.errors import ProviderAuthError, ProviderRateLimited
from gpubroker.core.offer import Availability
from gpubroker.core.testkit.conformance import ProviderConformance
from gpubroker.core.testkit.polling import poll_replay
from gpubroker_genesiscloud.adapter import (
    GenesisCloudAdapter,
    InstanceType,
    availability_of,
    country_of,
    parse_instance_type,
)

CTX = PollContext(GenesisCloudAdapter.info, datetime(2026, 11, 26, tzinfo=UTC))
TOKEN = {"api_token": "gc-token-abcdef"}


class TestGenesisCloudConformance(ProviderConformance):
    adapter = GenesisCloudAdapter
    publishes_prices = False


@pytest.mark.asyncio
async def test_default_scenario_lists_accelerator_types_of_both_regions(replay_server) -> None:  # type: ignore[no-untyped-def]
    offers = await poll_replay(GenesisCloudAdapter, replay_server(GenesisCloudAdapter), credentials=TOKEN)
    assert len(offers) == 21
    assert {(o.region, o.country) for o in offers} == {("EUC-DE-MUC-1", "DE"), ("NORD-NO-KRS-1", "NO")}
    assert {o.gpu_type for o in offers} == {"RTX 3090", "RTX 3080", "H100", "Gaudi 2"}
    assert all(o.price_per_hour is None for o in offers)


@pytest.mark.asyncio
async def test_a_recorded_h100_node(replay_server) -> None:  # type: ignore[no-untyped-def]
    offers = await poll_replay(GenesisCloudAdapter, replay_server(GenesisCloudAdapter), credentials=TOKEN)
    by_id = {o.provider_offer_id: o for o in offers}
    munich = by_id["EUC-DE-MUC-1/vcpu-192_memory-1920g_nvidia-h100-sxm5-8"]
    assert (munich.gpu_type, munich.gpu_count, munich.gpu_memory_gb) == ("H100", 8, 80)
    assert (munich.vcpus, munich.ram_gb) == (192, 1920)
    assert munich.availability_status == Availability.LIMITED  # count 2
    norway = by_id["NORD-NO-KRS-1/vcpu-192_memory-1920g_nvidia-h100-sxm5-8"]
    assert norway.availability_status == Availability.UNAVAILABLE


@pytest.mark.asyncio
async def test_token_is_sent_as_bearer(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(GenesisCloudAdapter)
    await poll_replay(GenesisCloudAdapter, server, credentials=TOKEN)
    assert sorted(r.path for r in server.requests) == [
        "/compute/v1/availability/EUC-DE-MUC-1/instances",
        "/compute/v1/availability/NORD-NO-KRS-1/instances",
    ]
    assert all(r.headers["Authorization"] == "Bearer gc-token-abcdef" for r in server.requests)
    assert not any("X-Auth-Token" in r.headers for r in server.requests)  # deprecated header


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "scenario, error", [("unauthorised", ProviderAuthError), ("rate_limited", ProviderRateLimited)]
)
async def test_recorded_errors_are_typed(replay_server, scenario: str, error: type[Exception]) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(GenesisCloudAdapter)
    server.scenario = scenario
    with pytest.raises(error):
        await poll_replay(GenesisCloudAdapter, server, credentials=TOKEN)


@pytest.mark.parametrize(
    "identifier, expected",
    [
        ("vcpu-192_memory-1920g_nvidia-h100-sxm5-8", InstanceType(192, 1920, None, "nvidia-h100-sxm5", 8)),
        ("vcpu-4_memory-24g_nvidia-rtx-3090-1", InstanceType(4, 24, None, "nvidia-rtx-3090", 1)),
        ("vcpu-4_memory-24g_disk-80g_nvidia3090-1", InstanceType(4, 24, 80, "nvidia3090", 1)),
        ("vcpu-16_memory-120g_intel-gaudi2-1", InstanceType(16, 120, None, "intel-gaudi2", 1)),
        ("vcpu-2_memory-4g_disk-80g", InstanceType(2, 4, 80, None, 0)),
    ],
)
def test_instance_type_identifiers(identifier: str, expected: InstanceType) -> None:
    assert parse_instance_type(identifier) == expected


def test_an_unreadable_identifier_is_a_malformed_record() -> None:
    with pytest.raises(ValueError):
        GenesisCloudAdapter().normalise({"type": "gpu-large", "available": True, "region": "EUC-DE-MUC-1"}, CTX)


def test_cpu_types_are_not_offers() -> None:
    record = {"type": "vcpu-8_memory-16g", "available": True, "region": "EUC-DE-MUC-1"}
    assert GenesisCloudAdapter().normalise(record, CTX) is None


@given(
    vcpus=st.integers(1, 512),
    memory=st.integers(1, 4096),
    gpus=st.integers(1, 16),
    model=st.sampled_from(["nvidia-rtx-3090", "nvidia-h100-sxm5", "nvidia3080", "intel-gaudi2"]),
)
def test_identifier_round_trip(vcpus: int, memory: int, gpus: int, model: str) -> None:
    record = {"type": f"vcpu-{vcpus}_memory-{memory}g_{model}-{gpus}", "available": True, "region": "NORD-NO-KRS-1"}
    offer = GenesisCloudAdapter().normalise(record, CTX)
    assert offer is not None
    assert (offer.vcpus, offer.ram_gb, offer.gpu_count, offer.gpu_name) == (vcpus, memory, gpus, model)
    assert offer.price_per_hour is None


@given(count=st.one_of(st.none(), st.integers(0, 100)), available=st.booleans())
def test_availability_follows_the_flag_then_the_count(count: int | None, available: bool) -> None:
    level = availability_of({"available": available, "count": count})
    if not available or count == 0:
        assert level == Availability.UNAVAILABLE
    elif count is None or count > 2:
        assert level == Availability.AVAILABLE
    else:
        assert level == Availability.LIMITED


@pytest.mark.parametrize(
    "region, country", [("EUC-DE-MUC-1", "DE"), ("NORD-NO-KRS-1", "NO"), ("ARC-IS-HAF-1", "IS"), ("X", None)]
)
def test_country_from_region(region: str, country: str | None) -> None:
    assert country_of(region) == country
