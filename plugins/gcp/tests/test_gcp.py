"""GCP plugin: GPU SKUs become per-region GPU attachments; units+nanos, Spot, paging, API key."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpubroker.core.adapter import PollContext
from gpubroker.core.errors import ProviderHTTPError
from gpubroker.core.gpus import resolve
from gpubroker.core.testkit.conformance import ProviderConformance
from gpubroker.core.testkit.polling import poll_replay
from gpubroker_gcp.adapter import GcpAdapter, gpu_hour_usd
from gpubroker_gcp.gpus import GPUS, gpu_for

CTX = PollContext(GcpAdapter.info, datetime(2026, 11, 26, tzinfo=UTC))
KEY = {"api_key": "AIzaSyExampleKey"}


class TestGcpConformance(ProviderConformance):
    adapter = GcpAdapter


def pricing(units: str, nanos: int, unit: str = "h", currency: str = "USD") -> list[dict[str, Any]]:
    rate = {"startUsageAmount": 0, "unitPrice": {"currencyCode": currency, "units": units, "nanos": nanos}}
    return [{"pricingExpression": {"usageUnit": unit, "displayQuantity": 1, "tieredRates": [rate]}}]


async def offers(replay_server) -> dict:  # type: ignore[no-untyped-def]
    found = await poll_replay(GcpAdapter, replay_server(GcpAdapter), credentials=KEY)
    return {o.provider_offer_id: o for o in found}


async def test_pages_key_and_query(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(GcpAdapter)
    await poll_replay(GcpAdapter, server, credentials=KEY)
    first, second = server.requests
    assert first.path == "/v1/services/6F81-5844-456A/skus"
    assert first.query == {"currencyCode": "USD", "pageSize": "5000", "key": "AIzaSyExampleKey"}
    assert second.query["pageToken"].startswith("CPvS9") and second.query["key"] == "AIzaSyExampleKey"
    assert "Authorization" not in first.headers


async def test_gpu_attachments_per_region_and_count(replay_server) -> None:  # type: ignore[no-untyped-def]
    found = await offers(replay_server)
    t4 = {k: o for k, o in found.items() if k.startswith("039F-D0DA-4055/")}
    assert sorted(t4) == [f"039F-D0DA-4055/{r}/{n}" for r in ("us-central1", "us-east1") for n in (1, 2, 4)]
    four = t4["039F-D0DA-4055/us-east1/4"]
    assert (four.price_per_hour, four.gpu_type, four.gpu_count, four.gpu_memory_gb) == (Decimal("1.4"), "T4", 4, 16)
    assert (four.spot, four.country, four.vcpus, four.ram_gb) == (False, "US", None, None)
    assert len(found) == 25  # cores, RAM and commitment SKUs are not offers


async def test_spot_and_nanos(replay_server) -> None:  # type: ignore[no-untyped-def]
    found = await offers(replay_server)
    spot = found["D4A8-1D4C-6F06/us-central1/2"]
    assert (spot.spot, spot.price_per_hour, spot.name) == (True, Decimal("0.28"), "2x nvidia-tesla-t4 (Spot)")
    h100 = found["E4C6-9A0F-54B1/us-east4/8"]
    assert h100.price_per_hour == Decimal("78.372405") and h100.gpu_type == "H100"
    a100 = found["2C79-3B4F-AD6B/us-central1/1"]
    assert (a100.price_per_hour, a100.gpu_memory_gb) == (Decimal("3.927118"), 80)
    assert found["8E2B-4E0A-66A4/europe-west4/1"].country == "NL"


async def test_invalid_key_answer_is_an_http_error(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(GcpAdapter)
    server.scenario = "bad_request"  # Google answers a bad key with 400 INVALID_ARGUMENT, not 401
    with pytest.raises(ProviderHTTPError):
        await poll_replay(GcpAdapter, server, credentials=KEY)


@pytest.mark.parametrize(
    "description, expected",
    [
        ("Nvidia Tesla T4 GPU running in Americas", "nvidia-tesla-t4"),
        ("Nvidia Tesla T4 GPU attached to Spot Preemptible VMs running in Americas", "nvidia-tesla-t4"),
        ("Spot Preemptible Nvidia L4 GPU running in EMEA", "nvidia-l4"),
        ("Nvidia H100 80GB GPU attached to A3 VMs running in Iowa", "nvidia-h100-80gb"),
        ("Nvidia Tesla A100 80GB GPU running in APAC", "nvidia-a100-80gb"),
        ("RTX 6000 96GB running in Belgium", "nvidia-rtx-pro-6000"),
        ("A4 Nvidia B200 (1 gpu slice) running in Americas", "nvidia-b200"),
        ("Commitment v1: Nvidia L4 GPU running in Americas for 1 Year", None),
        ("Reserved Nvidia H100 80GB Mega GPU in Americas", None),
        ("Nvidia Tesla T4 Virtual Workstation GPU running in Americas", None),
        ("N1 Predefined Instance Core running in Americas", None),
    ],
)
def test_descriptions(description: str, expected: str | None) -> None:
    gpu = gpu_for(description)
    assert (gpu.accelerator_type if gpu else None) == expected


@given(units=st.integers(0, 50), nanos=st.integers(0, 999_999_999), count=st.sampled_from([1, 2, 4, 8]))
def test_units_plus_nanos_times_count(units: int, nanos: int, count: int) -> None:
    per_gpu = Decimal(units) + Decimal(nanos) / Decimal(10**9)
    record = {
        "skuId": "X", "description": "Nvidia L4 GPU running in Americas", "serviceRegions": ["us-central1"],
        "category": {"resourceFamily": "Compute", "resourceGroup": "GPU", "usageType": "OnDemand"},
        "pricingInfo": pricing(str(units), nanos), "_gpubroker_region": "us-central1", "_gpubroker_count": count,
    }  # fmt: skip
    if per_gpu == 0:
        with pytest.raises(ValueError):
            GcpAdapter().normalise(record, CTX)
        return
    offer = GcpAdapter().normalise(record, CTX)
    assert offer is not None
    assert offer.price_per_hour == (per_gpu * count).quantize(Decimal("0.000001")).normalize()


def test_other_units_and_currencies() -> None:
    from gpubroker.core import fx

    with pytest.raises(ValueError):
        gpu_hour_usd(pricing("1", 0, unit="mo"))
    assert gpu_hour_usd(pricing("2", 0, currency="EUR")) == fx.to_usd(Decimal(2), "EUR")


def test_every_gpu_name_resolves() -> None:
    for gpu in GPUS.values():
        assert resolve(gpu.accelerator_type).gpu_type is not None, gpu
