"""Vultr plugin: conformance, hourly/monthly prices, GPU counts, cursor paging and recorded plans."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpubroker.core.adapter import Call, PollContext, Response
from gpubroker.core.errors import ProviderHTTPError, ProviderRateLimited
from gpubroker.core.recordings import Recordings
from gpubroker.core.testkit.conformance import ProviderConformance
from gpubroker.core.testkit.polling import poll_replay
from gpubroker_vultr.adapter import VultrAdapter, hourly_price
from gpubroker_vultr.gpus import CARD_MEMORY_GB, cloud_gpu, metal_gpu

CTX = PollContext(VultrAdapter.info, datetime(2026, 11, 26, tzinfo=UTC))


class TestVultrConformance(ProviderConformance):
    adapter = VultrAdapter


def recorded(body_file: str) -> dict[str, Any]:
    assert VultrAdapter.recordings is not None
    return json.loads(VultrAdapter.recordings.joinpath(body_file).read_text())


def plan(body_file: str, plan_id: str) -> dict[str, Any]:
    body = recorded(body_file)
    return next(p for p in body.get("plans", body.get("plans_metal", [])) if p["id"] == plan_id)


def test_a_cloud_gpu_plan_uses_its_hourly_price() -> None:
    record = {"kind": "vcg", "plan": plan("plans_vcg_2.json", "vcg-a100-12c-120g-80vram"), "location": "sgp"}
    offer = VultrAdapter().normalise(record, CTX)
    assert offer is not None
    assert offer.price_per_hour == Decimal("2.397")
    assert (offer.gpu_name, offer.gpu_type, offer.gpu_count, offer.gpu_memory_gb) == ("NVIDIA_A100", "A100", 1, 80)
    assert (offer.vcpus, offer.ram_gb, offer.storage_gb) == (12, 120, 1400)
    assert (offer.region, offer.country) == ("sgp", "SG")
    assert offer.provider_offer_id == "vcg-a100-12c-120g-80vram@sgp"


def test_a_fraction_of_a_card_is_one_gpu_with_that_memory() -> None:
    offer = VultrAdapter().normalise(
        {"kind": "vcg", "plan": plan("plans_vcg_1.json", "vcg-a16-2c-8g-2vram"), "location": "fra"}, CTX
    )
    assert offer is not None and (offer.gpu_count, offer.gpu_memory_gb, offer.country) == (1, 2.0, "DE")


def test_a_bare_metal_plan_without_hourly_price_is_monthly_over_730_hours() -> None:
    metal = plan("plans_metal.json", "vbm-112c-2048gb-8-h100-gpu")
    assert "hourly_cost" not in metal
    offer = VultrAdapter().normalise({"kind": "metal", "plan": metal, "location": "sea"}, CTX)
    assert offer is not None
    assert offer.price_per_hour == Decimal("23.92")  # 17461.60 / 730
    assert (offer.gpu_name, offer.gpu_type, offer.gpu_count, offer.gpu_memory_gb) == ("h100", "H100", 8, 80)
    assert (offer.vcpus, offer.ram_gb, offer.storage_gb) == (224, 2048, 30720)


def test_grace_hopper_is_arm_and_cpu_metal_is_not_a_gpu_offer() -> None:
    gh200 = VultrAdapter().normalise(
        {"kind": "metal", "plan": plan("plans_metal.json", "vbm-72c-480gb-gh200-gpu"), "location": "ewr"}, CTX
    )
    assert gh200 is not None and (gh200.cpu_arch, gh200.gpu_count, gh200.gpu_type) == ("arm64", 1, "GH200")
    cpu = {"kind": "metal", "plan": plan("plans_metal.json", "vbm-4c-32gb"), "location": "ewr"}
    assert VultrAdapter().normalise(cpu, CTX) is None


def test_plans_without_locations_give_no_offer_and_the_cursor_is_followed() -> None:
    call = Call("/v2/plans", params={"type": "vcg", "per_page": "500"}, tag="plans")
    body = json.dumps(recorded("plans_vcg_1.json")).encode()
    page = VultrAdapter().parse(Response(call, 200, {}, body), CTX)
    assert [c.params for c in page.follow] == [
        {"type": "vcg", "per_page": "500", "cursor": recorded("plans_vcg_1.json")["meta"]["links"]["next"]}
    ]
    last = VultrAdapter().parse(Response(call, 200, {}, json.dumps(recorded("plans_vcg_2.json")).encode()), CTX)
    assert last.follow == []
    assert "vcg-a100-48c-480g-320vram" not in {r["plan"]["id"] for r in last.records}


@given(monthly=st.decimals(min_value=Decimal("1"), max_value=Decimal("100000"), places=2))
def test_monthly_price_becomes_hourly_only_without_hourly(monthly: Decimal) -> None:
    assert hourly_price({"id": "p", "monthly_cost": float(monthly)}) == monthly / Decimal(730)
    assert hourly_price({"id": "p", "monthly_cost": float(monthly), "hourly_cost": "1.5"}) == Decimal("1.5")


@given(card=st.sampled_from(sorted(CARD_MEMORY_GB)), cards=st.integers(1, 8), fraction=st.integers(1, 8))
def test_gpu_count_is_plan_memory_over_one_cards(card: str, cards: int, fraction: int) -> None:
    per_card = CARD_MEMORY_GB[card]
    assert cloud_gpu(f"NVIDIA_{card}", per_card * cards) == (cards, per_card)
    small = per_card / (fraction + 1)
    assert cloud_gpu(f"NVIDIA_{card}", small) == (1, small)


@pytest.mark.parametrize(
    "plan_id, expected",
    [
        ("vbm-64c-2048gb-8-a100-gpu", ("a100", 8)),
        ("vbm-72c-480gb-gh200-gpu", ("gh200", 1)),
        ("vbm-64c-2048gb-l40-gpu", ("L40S", 1)),
        ("vbm-64c-2048gb-8-l40-gpu", ("L40S", 8)),
        ("vbm-24c-256gb-amd", None),
        ("vbm-4c-32gb", None),
    ],
)
def test_bare_metal_ids(plan_id: str, expected: tuple[str, int] | None) -> None:
    assert metal_gpu(plan_id) == expected


@pytest.mark.asyncio
async def test_the_api_key_is_optional_and_a_bearer_token(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(VultrAdapter)
    assert await poll_replay(VultrAdapter, server)
    assert all("Authorization" not in r.headers for r in server.requests)
    server.requests.clear()
    await poll_replay(VultrAdapter, server, credentials={"api_key": "vultr-test-key-01"})
    assert {r.headers["Authorization"] for r in server.requests} == {"Bearer vultr-test-key-01"}
    assert len(server.requests) == 3  # two Cloud GPU pages and the bare-metal list


@pytest.mark.asyncio
@pytest.mark.parametrize("scenario, error", [("bad_request", ProviderHTTPError), ("rate_limited", ProviderRateLimited)])
async def test_recorded_errors_are_typed(replay_server, scenario: str, error: type[Exception]) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(VultrAdapter)
    server.scenario = scenario
    with pytest.raises(error):
        await poll_replay(VultrAdapter, server)


def test_recordings_hold_both_lists() -> None:
    assert VultrAdapter.recordings is not None
    paths = {x.path for x in Recordings(VultrAdapter.recordings).exchanges()}
    assert paths == {"/v2/plans", "/v2/plans-metal"}


def test_the_l40_bare_metal_plan_is_eight_l40s() -> None:
    # Vultr's bare-metal plan vbm-64c-2048gb-8-l40-gpu is its "8 x NVIDIA L40S" server (Vultr
    # Bare Metal GPU page and pricing: 8 x L40S 48 GB, 64 cores, 2,048 GB RAM); the id's "l40"
    # token is not the older L40 card.
    record = {"kind": "metal", "plan": plan("plans_metal.json", "vbm-64c-2048gb-8-l40-gpu"), "location": "ewr"}
    offer = VultrAdapter().normalise(record, CTX)
    assert offer is not None
    assert (offer.gpu_type, offer.gpu_count, offer.gpu_memory_gb) == ("L40S", 8, 48)
    assert (offer.vcpus, offer.ram_gb) == (128, 2048)


def test_the_b200_bare_metal_plan_has_its_public_id() -> None:
    # Vultr's 8 x B200 bare-metal plan is vbm-256c-3072gb-8-b200-gpu (3,072 GB of RAM), as its
    # plan list publishes it; 8 x B200 with 180 GB each (Vultr's B200 page).
    record = {"kind": "metal", "plan": plan("plans_metal.json", "vbm-256c-3072gb-8-b200-gpu"), "location": "dfw"}
    offer = VultrAdapter().normalise(record, CTX)
    assert offer is not None
    assert (offer.gpu_type, offer.gpu_count, offer.gpu_memory_gb, offer.ram_gb) == ("B200", 8, 180, 3072)
