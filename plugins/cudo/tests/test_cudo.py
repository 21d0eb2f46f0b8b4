"""CUDO Compute plugin: conformance, per-component prices, configurations and recorded machine types."""

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
from gpubroker_cudo.adapter import BOOT_DISK_GIB, CudoAdapter, country_of, gpu_counts, smallest_config

CTX = PollContext(CudoAdapter.info, datetime(2026, 11, 26, tzinfo=UTC))


class TestCudoConformance(ProviderConformance):
    adapter = CudoAdapter


def machine_types() -> list[dict[str, Any]]:
    assert CudoAdapter.recordings is not None
    [exchange] = Recordings(CudoAdapter.recordings).exchanges()
    return json.loads(exchange.response.body)["machineTypes"]


def machine_type(data_center: str, name: str) -> dict[str, Any]:
    return next(m for m in machine_types() if m["dataCenterId"] == data_center and m["machineType"] == name)


def test_an_eight_gpu_h100_vm_sums_its_components() -> None:
    record = {"machineType": machine_type("gb-bournemouth-1", "epyc-genoa-h100-sxm"), "gpuCount": 8}
    offer = CudoAdapter().normalise(record, CTX)
    assert offer is not None
    # 8 GPUs x 2.25 + 32 vCPU (4 per GPU) x 0.0022 + 32 GiB (1 vCPU per GiB at most) x 0.003
    # + the boot disk every VM needs, 100 GiB x 0.00013 + the public IPv4 address, 0.005
    assert offer.price_per_hour == Decimal("18") + Decimal("0.0704") + Decimal("0.096") + Decimal("0.013") + Decimal(
        "0.005"
    )
    assert (offer.vcpus, offer.ram_gb, offer.storage_gb, offer.gpu_count) == (32, 32, 100, 8)
    assert (offer.gpu_type, offer.gpu_memory_gb) == ("H100", 80)
    assert (offer.region, offer.country) == ("gb-bournemouth-1", "GB")
    assert offer.availability_status == Availability.LIMITED  # 16 GPUs free in all: two such VMs
    assert offer.compliance_tags == ("renewable-energy",)
    assert offer.provider_offer_id == "gb-bournemouth-1/epyc-genoa-h100-sxm/8"


def test_counts_follow_the_free_gpus_and_cpu_types_give_nothing() -> None:
    body = json.dumps({"machineTypes": machine_types()}).encode()
    page = CudoAdapter().parse(Response(Call("/v1/vms/machine-types-2"), 200, {}, body), CTX)
    counts = {(r["machineType"]["dataCenterId"], r["machineType"]["machineType"], r["gpuCount"]) for r in page.records}
    assert {n for dc, t, n in counts if t == "epyc-genoa-h100-nvl"} == {1, 2, 4}
    assert ("se-stockholm-1", "intel-broadwell-rtx-a4000", 1) in counts
    cpu = [r for r in page.records if not r["machineType"]["gpuModel"]]
    assert cpu and all(CudoAdapter().normalise(r, CTX) is None for r in cpu)


def test_no_free_gpu_is_one_unavailable_gpu() -> None:
    offer = CudoAdapter().normalise(
        {"machineType": machine_type("se-stockholm-1", "intel-broadwell-rtx-a4000"), "gpuCount": 1}, CTX
    )
    assert offer is not None and offer.availability_status == Availability.UNAVAILABLE


@given(
    gpu=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("10"), places=4),
    vcpu=st.decimals(min_value=Decimal("0"), max_value=Decimal("0.05"), places=5),
    memory=st.decimals(min_value=Decimal("0"), max_value=Decimal("0.05"), places=5),
    count=st.sampled_from([1, 2, 4, 8]),
    per_gpu=st.integers(0, 32),
    ratio=st.sampled_from([0.25, 0.5, 1.0, 2.0]),
)
def test_price_is_the_sum_of_the_component_prices(
    gpu: Decimal, vcpu: Decimal, memory: Decimal, count: int, per_gpu: int, ratio: float
) -> None:
    base = machine_type("gb-bournemouth-1", "epyc-genoa-h100-sxm")
    mt = {
        **base, "gpuPriceHr": {"value": str(gpu)}, "vcpuPriceHr": {"value": str(vcpu)},
        "memoryGibPriceHr": {"value": str(memory)}, "minVcpuPerGpu": per_gpu, "maxVcpuPerMemoryGib": ratio,
        "maxGpuFree": 8,
    }  # fmt: skip
    offer = CudoAdapter().normalise({"machineType": mt, "gpuCount": count}, CTX)
    assert offer is not None
    fixed = BOOT_DISK_GIB * Decimal(base["minStorageGibPriceHr"]["value"]) + Decimal(base["ipv4PriceHr"]["value"])
    expected = gpu * count + vcpu * int(offer.vcpus) + memory * int(offer.ram_gb) + fixed  # type: ignore[arg-type]
    assert offer.price_per_hour == expected.quantize(Decimal("0.000001")).normalize()
    assert offer.vcpus is not None and offer.ram_gb is not None
    assert offer.vcpus >= max(1, count * per_gpu)
    assert offer.vcpus <= offer.ram_gb * ratio + 1e-9  # vCPUs per GiB stays within the maximum


@given(
    per_gpu=st.floats(0, 16), min_vcpu=st.floats(0, 64), min_ratio=st.floats(0, 1), max_ratio=st.floats(0.01, 4),
    min_memory=st.floats(0, 256), count=st.integers(1, 8),
)  # fmt: skip
def test_the_smallest_config_obeys_every_rule(
    per_gpu: float, min_vcpu: float, min_ratio: float, max_ratio: float, min_memory: float, count: int
) -> None:
    rules = {
        "minVcpuPerGpu": per_gpu, "minVcpu": min_vcpu, "minVcpuPerMemoryGib": min_ratio,
        "maxVcpuPerMemoryGib": max_ratio, "minMemoryGib": min_memory,
    }  # fmt: skip
    vcpus, memory = smallest_config(rules, count)
    assert vcpus >= count * per_gpu - 1e-9 and vcpus >= min_vcpu - 1e-9 and vcpus >= 1
    assert memory >= min_memory - 1e-9 and memory >= 1
    assert vcpus >= memory * min_ratio - 1e-9


def test_prices_may_be_bare_decimal_strings() -> None:
    mt = {**machine_type("no-luster-1", "intel-icelake-rtx-a5000"), "gpuPriceHr": "0.26", "vcpuPriceHr": "0.0021"}
    offer = CudoAdapter().normalise({"machineType": mt, "gpuCount": 1}, CTX)
    assert offer is not None and offer.price_per_hour == Decimal("0.283")  # 0.265 + 100 GiB x 0.00013 + 0.005


@pytest.mark.parametrize(
    "data_center, code",
    [
        ("gb-bournemouth-1", "GB"),
        ("us-santaclara-1", "US"),
        ("se-smedjebacken-1", "SE"),
        ("london", None),
        ("xyz-1", None),
    ],
)
def test_country_from_data_center_id(data_center: str, code: str | None) -> None:
    assert country_of(data_center) == code


def test_gpu_counts_never_exceed_what_one_vm_can_take() -> None:
    assert gpu_counts({"gpuModel": "H100 SXM", "maxGpuFree": 5}) == [1, 2, 4]
    assert gpu_counts({"gpuModel": "H100 SXM", "maxGpuFree": 0}) == [1]
    assert gpu_counts({"gpuModel": ""}) == [0]


@pytest.mark.asyncio
async def test_bearer_key_only_when_configured(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(CudoAdapter)
    assert await poll_replay(CudoAdapter, server, credentials={"api_key": "cudo-test-key-01"})
    assert server.requests[-1].headers["Authorization"] == "Bearer cudo-test-key-01"
    assert await poll_replay(CudoAdapter, server)
    assert "Authorization" not in server.requests[-1].headers


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "scenario, error", [("unauthorised", ProviderAuthError), ("rate_limited", ProviderRateLimited)]
)
async def test_recorded_errors_are_typed(replay_server, scenario: str, error: type[Exception]) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(CudoAdapter)
    server.scenario = scenario
    with pytest.raises(error):
        await poll_replay(CudoAdapter, server)
