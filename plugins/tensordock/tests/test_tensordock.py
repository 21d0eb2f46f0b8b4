"""TensorDock plugin: conformance, the per-instance price rule, and recorded hostnodes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpubroker.core.adapter import PollContext
from gpubroker.core.errors import ProviderAuthError, ProviderRateLimited
from gpubroker.core.offer import Availability
from gpubroker.core.recordings import Recordings
from gpubroker.core.renting import RentalRequest, rental_tag
from gpubroker.core.testkit.conformance import ProviderConformance
from gpubroker.core.testkit.polling import poll_replay
from gpubroker_tensordock.adapter import MIN_STORAGE_GB, TensorDockAdapter, instance_config
from gpubroker_tensordock.countries import country_code
from gpubroker_tensordock.emulator import TensorDockDialect

CTX = PollContext(TensorDockAdapter.info, datetime(2026, 11, 26, tzinfo=UTC))
KEY = {"api_key": "td-test-token-0001"}


class TestTensorDockConformance(ProviderConformance):
    adapter = TensorDockAdapter
    rental_request = RentalRequest(
        tag=rental_tag("conformance"),
        provider_offer_id="0b3c8d3e-hostnode/geforcertx4090-pcie-24gb",
        gpu_count=1,
        ssh_public_key="ssh-ed25519 AAAA conformance",
    )
    rental_instance_id = "8c2f0e88-3b4a-4c2c-9d27-f5a1c2c2b7ab"
    emulator = TensorDockDialect


def hostnodes() -> list[dict[str, Any]]:
    assert TensorDockAdapter.recordings is not None
    [exchange] = Recordings(TensorDockAdapter.recordings).exchanges()
    return json.loads(exchange.response.body)["data"]["hostnodes"]


def record(hostnode: dict[str, Any], model: str) -> dict[str, Any]:
    [gpu] = [g for g in hostnode["available_resources"]["gpus"] if g["v0Name"] == model]
    return {"hostnode": hostnode, "gpu": gpu}


def node(city: str, model: str) -> dict[str, Any]:
    return next(
        n
        for n in hostnodes()
        if n["location"]["city"] == city and any(g["v0Name"] == model for g in n["available_resources"]["gpus"])
    )


def test_an_eight_gpu_h100_hostnode_is_priced_as_one_whole_instance() -> None:
    hostnode = hostnodes()[0]  # Austin, 8x H100 SXM5 at $1.99, the whole node's resources
    offer = TensorDockAdapter().normalise(record(hostnode, "h100-sxm5-80gb"), CTX)
    assert offer is not None
    # 8 x 1.99 + 208 vCPU x 0.0015 + 1900 GB x 0.0007 + 14780 GB x 0.00005
    assert offer.price_per_hour == Decimal("15.92") + Decimal("0.312") + Decimal("1.33") + Decimal("0.739")
    assert (offer.gpu_type, offer.gpu_count, offer.gpu_memory_gb) == ("H100", 8, 80)
    assert (offer.vcpus, offer.ram_gb, offer.storage_gb) == (208, 1900, 14780)
    assert (offer.country, offer.region) == ("US", hostnode["location_id"])
    assert offer.availability_status == Availability.AVAILABLE
    assert offer.resold_from == "Lonestar Compute LLC"
    assert offer.compliance_tags == ("datacenter-tier-3",)


def test_a_mixed_hostnode_shares_its_resources_by_gpu() -> None:
    hostnode = node("Chicago", "a100-pcie-80gb")  # 2 A100 + 4 A6000 free, 96 vCPU, 500 GB, 7600 GB
    a100 = TensorDockAdapter().normalise(record(hostnode, "a100-pcie-80gb"), CTX)
    a6000 = TensorDockAdapter().normalise(record(hostnode, "rtxa6000-pcie-48gb"), CTX)
    assert a100 is not None and a6000 is not None
    assert (a100.vcpus, a100.ram_gb, a100.storage_gb) == (32, 166, 2533)
    assert (a6000.vcpus, a6000.ram_gb, a6000.storage_gb) == (64, 333, 5066)
    assert a100.availability_status == Availability.LIMITED and a6000.availability_status == Availability.AVAILABLE
    assert a100.id != a6000.id


def test_a_model_with_no_free_gpu_is_one_unavailable_gpu() -> None:
    hostnode = node("Winnipeg", "geforcertx4090-pcie-24gb")
    offer = TensorDockAdapter().normalise(record(hostnode, "geforcertx4090-pcie-24gb"), CTX)
    assert offer is not None
    assert offer.gpu_count == 1 and offer.availability_status == Availability.UNAVAILABLE
    assert offer.country == "CA"


def test_every_recorded_gpu_becomes_an_offer_with_a_known_gpu() -> None:
    expected = sum(len(n["available_resources"]["gpus"]) for n in hostnodes())
    offers = [TensorDockAdapter().normalise(r, CTX) for n in hostnodes() for r in _records(n)]
    assert len(offers) == expected
    assert all(o is not None and o.gpu_type for o in offers)


def _records(hostnode: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"hostnode": hostnode, "gpu": gpu} for gpu in hostnode["available_resources"]["gpus"]]


@given(
    price=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("20"), places=4),
    free=st.integers(0, 16),
    vcpus=st.integers(1, 512),
    ram=st.integers(1, 4096),
    disk=st.integers(0, 50_000),
)
def test_price_is_gpus_plus_the_resources_taken(price: Decimal, free: int, vcpus: int, ram: int, disk: int) -> None:
    hostnode = json.loads(json.dumps(hostnodes()[0]))
    hostnode["available_resources"].update(vcpu_count=vcpus, ram_gb=ram, storage_gb=disk)
    hostnode["available_resources"]["gpus"] = [
        {"v0Name": "h100-sxm5-80gb", "availableCount": free, "price_per_hr": str(price)}
    ]
    offer = TensorDockAdapter().normalise(record(hostnode, "h100-sxm5-80gb"), CTX)
    assert offer is not None
    count = max(free, 1)
    resources = (
        Decimal(offer.vcpus) * Decimal("0.0015")  # type: ignore[arg-type]
        + Decimal(offer.ram_gb) * Decimal("0.0007")  # type: ignore[arg-type]
        + Decimal(offer.storage_gb) * Decimal("0.00005")  # type: ignore[arg-type]
    )
    assert offer.price_per_hour == (price * count + resources).quantize(Decimal("0.000001")).normalize()
    assert offer.gpu_count == count
    assert offer.price_per_gpu_hour is not None and offer.price_per_gpu_hour >= price


@given(
    counts=st.lists(st.integers(0, 8), min_size=1, max_size=4),
    vcpus=st.integers(1, 256),
    ram=st.integers(1, 2048),
    disk=st.integers(0, 20_000),
)
def test_shares_never_exceed_what_the_hostnode_has(counts: list[int], vcpus: int, ram: int, disk: int) -> None:
    resources = {
        "gpus": [{"availableCount": c} for c in counts], "vcpu_count": vcpus, "ram_gb": ram, "storage_gb": disk,
    }  # fmt: skip
    shares = [instance_config(resources, max(c, 1)) for c in counts if c]
    assert sum(s["vcpus"] for s in shares) <= vcpus + len(shares)
    assert sum(s["ram_gb"] for s in shares) <= ram + len(shares)
    for share in shares:
        assert share["storage_gb"] <= disk or (disk == 0 and share["storage_gb"] == MIN_STORAGE_GB)


@pytest.mark.parametrize(
    "name, code",
    [
        ("United States", "US"),
        ("united  kingdom", "GB"),
        ("Netherlands", "NL"),
        ("DE", "DE"),
        ("Atlantis", None),
        (None, None),
    ],
)
def test_country_names_become_iso_codes(name: str | None, code: str | None) -> None:
    assert country_code(name) == code


@pytest.mark.asyncio
async def test_the_token_is_sent_as_a_bearer_header(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(TensorDockAdapter)
    offers = await poll_replay(TensorDockAdapter, server, credentials=KEY)
    assert offers
    assert server.requests[0].headers["Authorization"] == "Bearer td-test-token-0001"
    assert server.requests[0].path == "/api/v2/hostnodes"


@pytest.mark.parametrize(
    "scenario, error", [("unauthorised", ProviderAuthError), ("rate_limited", ProviderRateLimited)]
)
@pytest.mark.asyncio
async def test_recorded_errors_are_typed(replay_server, scenario: str, error: type[Exception]) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(TensorDockAdapter)
    server.scenario = scenario
    with pytest.raises(error):
        await poll_replay(TensorDockAdapter, server, credentials=KEY)
