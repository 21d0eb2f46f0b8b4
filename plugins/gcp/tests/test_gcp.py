"""GCP plugin: machine types priced from their parts' SKUs per region; units+nanos, Spot, paging, API key."""

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
from gpubroker_gcp.adapter import GcpAdapter, machine_records, unit_price_usd
from gpubroker_gcp.machines import MACHINES
from gpubroker_gcp.skus import GPU_MEMORY_GB, STEMS, part_for

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


async def test_offers_are_whole_machine_types_with_their_vcpus_and_ram(replay_server) -> None:  # type: ignore[no-untyped-def]
    # Google documents g2-standard-4 as 1 NVIDIA L4 with 4 vCPUs and 16 GB, and bills it as
    # 4 x the G2 vCPU-hour + 16 x the G2 GiB-hour + 1 x the L4 GPU-hour of the same region
    # (https://cloud.google.com/compute/docs/accelerator-optimized-machines, G2 machine types;
    # https://cloud.google.com/compute/vm-instance-pricing, accelerator-optimized machines).
    # With the recorded us-central1 SKUs that is 4 x 0.024988 + 16 x 0.002927 + 0.56004
    # = 0.706824 USD an hour (Google lists g2-standard-4 there at about 0.71), where a GPU-only
    # price would say 0.56004 and leave vCPUs and RAM empty.
    found = await offers(replay_server)
    g2 = found["g2-standard-4/us-central1"]
    assert (g2.gpu_type, g2.gpu_count, g2.vcpus, g2.ram_gb) == ("L4", 1, 4, 16)
    assert g2.price_per_hour == Decimal("0.706824")
    # a2-ultragpu-1g: 1 A100 80GB, 12 vCPUs, 170 GB (same documentation, A2 Ultra):
    # 12 x 0.031611 + 170 x 0.004237 + 3.927118 = 5.02674.
    a2 = found["a2-ultragpu-1g/us-central1"]
    assert (a2.gpu_type, a2.gpu_memory_gb, a2.vcpus, a2.ram_gb, a2.price_per_hour) == (
        "A100",
        80,
        12,
        170,
        Decimal("5.02674"),
    )
    # a3-highgpu-8g: 8 H100 80GB, 208 vCPUs, 1,872 GB: 208 x 0.033508 + 1872 x 0.003592 + 8 x 9.796550569.
    a3 = found["a3-highgpu-8g/us-east4"]
    assert (a3.gpu_count, a3.vcpus, a3.ram_gb, a3.price_per_hour) == (8, 208, 1872, Decimal("92.066293"))
    assert all(o.vcpus and o.ram_gb for o in found.values()), "every GCP offer has vCPUs and RAM"


async def test_n1_machines_carry_attached_gpus_in_common_shapes(replay_server) -> None:  # type: ignore[no-untyped-def]
    # N1 takes 1, 2 or 4 T4s (https://cloud.google.com/compute/docs/gpus: T4 on N1, up to 48
    # vCPUs for 1-2 GPUs and 96 for 4); the plugin lists n1-standard-8 per GPU (3.75 GB a vCPU).
    # n1-standard-8 + 1 T4 in us-east1: 8 x 0.031611 + 30 x 0.004237 + 0.35 = 0.729998.
    found = await offers(replay_server)
    t4 = {k: o for k, o in found.items() if "nvidia-tesla-t4" in k}
    assert sorted(t4) == sorted(
        [f"n1-standard-{8 * n}+{n}xnvidia-tesla-t4/{r}" for r in ("us-central1", "us-east1") for n in (1, 2, 4)]
        + [f"n1-standard-{8 * n}+{n}xnvidia-tesla-t4/us-central1/spot" for n in (1, 2, 4)]
    )
    one = t4["n1-standard-8+1xnvidia-tesla-t4/us-east1"]
    assert (one.name, one.vcpus, one.ram_gb, one.price_per_hour) == (
        "n1-standard-8 + 1 x nvidia-tesla-t4",
        8,
        30,
        Decimal("0.729998"),
    )


async def test_spot_machines_use_the_spot_skus_of_every_part(replay_server) -> None:  # type: ignore[no-untyped-def]
    # Spot VMs are billed at the Spot price of each part (https://cloud.google.com/spot-vms/pricing):
    # 16 x 0.00735 + 60 x 0.000985 + 2 x 0.14 = 0.4567 for n1-standard-16 with 2 T4s.
    found = await offers(replay_server)
    spot = found["n1-standard-16+2xnvidia-tesla-t4/us-central1/spot"]
    assert (spot.spot, spot.price_per_hour, spot.name) == (
        True, Decimal("0.4567"), "n1-standard-16 + 2 x nvidia-tesla-t4 (Spot)"
    )  # fmt: skip
    assert "n1-standard-16+2xnvidia-tesla-t4/us-east1/spot" not in found  # no Spot T4 SKU there


async def test_the_b200_slice_sku_is_a_whole_machine_price(replay_server) -> None:  # type: ignore[no-untyped-def]
    # A4 (a4-highgpu-8g: 8 B200, 224 vCPUs, 3,968 GB; accelerator-optimized machines page) is billed
    # per GPU slice of the machine ("A4 Nvidia B200 (1 gpu slice)"), each slice holding its share
    # of vCPUs and memory: the machine is 8 x 10.86 = 86.88 an hour with nothing added, and the
    # slice SKU is never read as a GPU-hour price beside core and RAM prices.
    found = await offers(replay_server)
    a4 = found["a4-highgpu-8g/us-central1"]
    assert (a4.gpu_type, a4.gpu_count, a4.vcpus, a4.ram_gb, a4.price_per_hour) == (
        "B200",
        8,
        224,
        3968,
        Decimal("86.88"),
    )
    assert found["g2-standard-8/europe-west4"].country == "NL"
    assert len(found) == 34  # commitments and parts without the others in their region give no machine


def test_a_machine_whose_part_price_is_unreadable_is_rejected() -> None:
    prices = [
        ("core", "g2", False, "us-central1", "0.02", "C"),
        ("ram", "g2", False, "us-central1", "SKU R: priced per 'mo', not per 'GiBy.h'", "R"),
        ("gpu", "nvidia-l4", False, "us-central1", "0.5", "G"),
    ]
    [record, *_] = machine_records(prices)
    with pytest.raises(ValueError, match="unreadable ram price"):
        GcpAdapter().normalise(record, CTX)


async def test_invalid_key_answer_is_an_http_error(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(GcpAdapter)
    server.scenario = "bad_request"  # Google answers a bad key with 400 INVALID_ARGUMENT, not 401
    with pytest.raises(ProviderHTTPError):
        await poll_replay(GcpAdapter, server, credentials=KEY)


@pytest.mark.parametrize(
    "description, expected",
    [
        ("Nvidia Tesla T4 GPU running in Americas", ("gpu", "nvidia-tesla-t4")),
        ("Nvidia Tesla T4 GPU attached to Spot Preemptible VMs running in Americas", ("gpu", "nvidia-tesla-t4")),
        ("Spot Preemptible Nvidia L4 GPU running in EMEA", ("gpu", "nvidia-l4")),
        ("Nvidia H100 80GB GPU attached to A3 VMs running in Iowa", ("gpu", "nvidia-h100-80gb")),
        ("Nvidia Tesla A100 80GB GPU running in APAC", ("gpu", "nvidia-a100-80gb")),
        ("RTX 6000 96GB running in Belgium", ("gpu", "nvidia-rtx-pro-6000")),
        ("A4 Nvidia B200 (1 gpu slice) running in Americas", ("slice", "nvidia-b200")),
        ("N1 Predefined Instance Core running in Americas", ("core", "n1")),
        ("Spot Preemptible A2 Instance Ram running in Americas", ("ram", "a2")),
        ("A3Plus Instance Core running in Virginia", ("core", "a3-mega")),
        ("Commitment v1: Nvidia L4 GPU running in Americas for 1 Year", None),
        ("Reserved Nvidia H100 80GB Mega GPU in Americas", None),
        ("Nvidia Tesla T4 Virtual Workstation GPU running in Americas", None),
        ("E2 Instance Core running in Americas", None),
    ],
)
def test_descriptions(description: str, expected: tuple[str, str] | None) -> None:
    part = part_for(description)
    assert ((part.kind, part.key) if part else None) == expected


@given(units=st.integers(0, 50), nanos=st.integers(0, 999_999_999))
def test_units_plus_nanos(units: int, nanos: int) -> None:
    amount = Decimal(units) + Decimal(nanos) / Decimal(10**9)
    if amount == 0:
        with pytest.raises(ValueError):
            unit_price_usd(pricing(str(units), nanos), "h")
        return
    assert unit_price_usd(pricing(str(units), nanos), "h") == amount


def test_other_units_and_currencies() -> None:
    from gpubroker.core import fx

    with pytest.raises(ValueError):
        unit_price_usd(pricing("1", 0, unit="mo"), "h")
    assert unit_price_usd(pricing("2", 0, currency="EUR"), "h") == fx.to_usd(Decimal(2), "EUR")


def test_every_machine_is_priced_by_parts_the_catalogue_has_and_its_gpu_resolves() -> None:
    kinds = {(kind, key) for kind, key in STEMS.values()}
    for machine in MACHINES:
        assert resolve(machine.accelerator).gpu_type is not None, machine
        assert machine.accelerator in GPU_MEMORY_GB
        if machine.billing == "slices":
            assert ("slice", machine.accelerator) in kinds
        else:
            assert {("core", machine.family), ("ram", machine.family), ("gpu", machine.accelerator)} <= kinds
    assert len({m.key for m in MACHINES}) == len(MACHINES)
