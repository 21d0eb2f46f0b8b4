"""Seeweb plugin: plans joined with what can be created now, EUR prices, MiB memory, recorded answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpubroker.core import fx
from gpubroker.core.adapter import Call, PollContext, Response
from gpubroker.core.errors import ProviderAuthError, ProviderRateLimited
from gpubroker.core.offer import Availability
from gpubroker.core.testkit.conformance import ProviderConformance
from gpubroker.core.testkit.polling import poll_replay
from gpubroker_seeweb.adapter import AVAILABLE_PLANS, PLANS, SeewebAdapter, country_of

CTX = PollContext(SeewebAdapter.info, datetime(2026, 11, 26, tzinfo=UTC))
TOKEN = {"api_token": "seeweb-token-42"}
RECORDED_ERRORS = [("unauthorised", ProviderAuthError), ("rate_limited", ProviderRateLimited)]


class TestSeewebConformance(ProviderConformance):
    adapter = SeewebAdapter


def recorded_plan(name: str) -> dict:  # type: ignore[type-arg]
    assert SeewebAdapter.recordings is not None
    plans = json.loads(SeewebAdapter.recordings.joinpath("plans.json").read_bytes())["plans"]
    [plan] = [p for p in plans if p["name"] == name]
    return plan


def record(name: str = "ECS1GPU7", **overrides: object) -> dict:  # type: ignore[type-arg]
    return {**recorded_plan(name), "location": "it-fr2", "creatable": True, **overrides}


def respond(call: Call, body: object) -> Response:
    return Response(call, 200, {}, json.dumps(body).encode(), "seeweb")


@pytest.mark.asyncio
async def test_default_scenario_offers_each_gpu_plan_in_each_region(replay_server) -> None:  # type: ignore[no-untyped-def]
    offers = await poll_replay(SeewebAdapter, replay_server(SeewebAdapter), credentials=TOKEN)
    assert len(offers) == 31
    assert {o.region for o in offers} == {"it-fr2", "it-mi2", "bg-sof1"}
    assert {o.gpu_type for o in offers} == {
        "RTX 6000", "RTX A6000", "A100", "L4", "L40S", "H100", "MI300X", "H200", "RTX PRO 6000",
    }  # fmt: skip
    assert not any("Tenstorrent" in o.gpu_name for o in offers)  # not a GPU the catalogue models
    assert not any(o.name == "ECS1GPU4" for o in offers)  # a plan no longer sold


@pytest.mark.asyncio
async def test_a_recorded_h100_plan(replay_server) -> None:  # type: ignore[no-untyped-def]
    offers = {
        o.provider_offer_id: o
        for o in await poll_replay(SeewebAdapter, replay_server(SeewebAdapter), credentials=TOKEN)
    }
    h100 = offers["it-fr2/ECS1GPU8"]
    assert h100.price_per_hour == fx.to_usd(Decimal("7.96"), "EUR")
    assert (h100.gpu_type, h100.gpu_count, h100.gpu_memory_gb) == ("H100", 4, 80)
    assert (h100.vcpus, h100.ram_gb, h100.storage_gb, h100.country) == (64, 1024.0, 6000, "IT")
    assert h100.availability_status == Availability.AVAILABLE
    assert offers["it-fr2/ECS2GPU8"].availability_status == Availability.UNAVAILABLE  # not in plans/availables
    assert offers["it-mi2/ECS4GPU7"].availability_status == Availability.UNAVAILABLE
    assert offers["it-fr2/ECS4GPU7"].availability_status == Availability.AVAILABLE


@pytest.mark.asyncio
async def test_both_calls_carry_the_api_token(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(SeewebAdapter)
    await poll_replay(SeewebAdapter, server, credentials=TOKEN)
    assert [r.path for r in server.requests] == [PLANS, AVAILABLE_PLANS]
    assert all(r.headers["X-APITOKEN"] == "seeweb-token-42" for r in server.requests)


@pytest.mark.asyncio
async def test_no_gpu_plan_no_second_call(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(SeewebAdapter)
    server.scenario = "empty"
    assert await poll_replay(SeewebAdapter, server, credentials=TOKEN) == []
    assert [r.path for r in server.requests] == [PLANS]


@pytest.mark.asyncio
@pytest.mark.parametrize("scenario, error", RECORDED_ERRORS)
async def test_recorded_errors_are_typed(replay_server, scenario: str, error: type[Exception]) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(SeewebAdapter)
    server.scenario = scenario
    with pytest.raises(error):
        await poll_replay(SeewebAdapter, server, credentials=TOKEN)


def test_the_chain_joins_plans_with_what_can_be_created() -> None:
    adapter = SeewebAdapter()
    plan = recorded_plan("ECS1GPU6")
    page = adapter.parse(respond(Call(PLANS), {"status": "ok", "plans": [plan, recorded_plan("eCS1")]}), CTX)
    [second] = page.follow
    assert second.path == AVAILABLE_PLANS and [p["name"] for p in second.carry["gpu_plans"]] == ["ECS1GPU6"]
    now = {"status": "ok", "plans": [{**plan, "region_availables": [{"region": "it-mi2", "hosts": []}]}]}
    records = adapter.parse(respond(second, now), CTX).records
    assert [(r["location"], r["creatable"]) for r in records] == [("it-fr2", False), ("it-mi2", True)]


def test_the_second_call_outside_the_chain_is_refused() -> None:
    with pytest.raises(ValueError):
        SeewebAdapter().parse(respond(Call(AVAILABLE_PLANS), {"status": "ok", "plans": []}), CTX)


def test_cpu_inactive_and_non_gpu_accelerator_plans_are_not_offers() -> None:
    adapter = SeewebAdapter()
    assert adapter.normalise(record("eCS1"), CTX) is None
    assert adapter.normalise(record("ECS1GPU4"), CTX) is None  # "available": false
    assert adapter.normalise(record("ECS1AIA1"), CTX) is None  # Tenstorrent


def test_a_windows_plan_is_tagged() -> None:
    offer = SeewebAdapter().normalise(record(windows=True), CTX)
    assert offer is not None and offer.compliance_tags == ("windows",)


@given(eur=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100"), places=3), gpus=st.integers(1, 8))
def test_hourly_price_is_the_whole_server_in_eur(eur: Decimal, gpus: int) -> None:
    offer = SeewebAdapter().normalise(record(hourly_price=float(eur), gpu=str(gpus)), CTX)
    assert offer is not None and offer.gpu_count == gpus
    assert offer.price_per_hour == fx.to_usd(eur, "EUR").quantize(Decimal("0.000001")).normalize()


@given(mib=st.integers(1024, 4 * 1024 * 1024), creatable=st.booleans())
def test_ram_is_mib_and_stock_is_creatable(mib: int, creatable: bool) -> None:
    offer = SeewebAdapter().normalise(record(ram=str(mib), creatable=creatable), CTX)
    assert offer is not None and offer.ram_gb == round(mib / 1024, 1)
    assert offer.availability_status == (Availability.AVAILABLE if creatable else Availability.UNAVAILABLE)


@pytest.mark.parametrize("location, country", [("it-fr2", "IT"), ("ch-lug1", "CH"), ("bg-sof1", "BG"), ("x", None)])
def test_country_from_location(location: str, country: str | None) -> None:
    assert country_of(location) == country
