"""Shadeform plugin: the conformance suite, unit conversions and the recorded catalogue."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
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
from gpubroker_shadeform.adapter import PATH, ShadeformAdapter, _country

CTX = PollContext(ShadeformAdapter.info, datetime(2026, 11, 26, tzinfo=UTC))
KEY = {"api_key": "sf-test-key-0123"}


class TestShadeformConformance(ProviderConformance):
    adapter = ShadeformAdapter


def recorded_types() -> list[dict[str, Any]]:
    assert ShadeformAdapter.recordings is not None
    [exchange] = Recordings(ShadeformAdapter.recordings).exchanges()
    return json.loads(exchange.response.body)["instance_types"]


def recorded_type(cloud: str, shade_type: str) -> dict[str, Any]:
    return next(t for t in recorded_types() if t["cloud"] == cloud and t["shade_instance_type"] == shade_type)


def normalise(item: dict[str, Any], entry: dict[str, Any]) -> Offer:
    offer = ShadeformAdapter().normalise({"instance_type": item, "availability": entry}, CTX)
    assert offer is not None
    return offer


async def poll(server: Any) -> list[Offer]:
    return await poll_replay(ShadeformAdapter, server, credentials=KEY)


async def test_one_offer_per_region_and_rental_type(replay_server) -> None:  # type: ignore[no-untyped-def]
    offers = await poll(replay_server(ShadeformAdapter))
    assert len(offers) == sum(len(t["availability"]) for t in recorded_types())
    assert all(o.gpu_type is not None for o in offers)
    assert all(o.resold_from for o in offers)


async def test_a_recorded_8x_h100_comes_out_right(replay_server) -> None:  # type: ignore[no-untyped-def]
    offers = {o.provider_offer_id: o for o in await poll(replay_server(ShadeformAdapter))}
    offer = offers["lambdalabs:H100_sxm5x8:saltlakecity-usa-1:on_demand"]
    assert offer.price_per_hour == Decimal("23.92")
    assert offer.price_per_gpu_hour == Decimal("2.99")
    assert (offer.gpu_type, offer.gpu_count, offer.gpu_memory_gb) == ("H100", 8, 80)
    assert (offer.region, offer.country, offer.resold_from) == ("saltlakecity-usa-1", "US", "lambdalabs")
    assert offer.availability_status == Availability.AVAILABLE and not offer.spot
    dallas = offers["lambdalabs:H100_sxm5x8:dallas-usa-3:on_demand"]
    assert dallas.availability_status == Availability.UNAVAILABLE


async def test_spot_entries_are_their_own_offers_at_their_own_price(replay_server) -> None:  # type: ignore[no-untyped-def]
    offers = {o.provider_offer_id: o for o in await poll(replay_server(ShadeformAdapter))}
    on_demand = offers["excesssupply:H200x8:tokyo-japan-5:on_demand"]
    spot = offers["excesssupply:H200x8:tokyo-japan-5:spot"]
    assert (on_demand.price_per_hour, on_demand.spot, on_demand.spot_price) == (Decimal("24.8"), False, None)
    assert (spot.price_per_hour, spot.spot, spot.spot_price) == (Decimal("17.6"), True, Decimal("17.6"))
    sold_out = offers["excesssupply:A6000:wichita-usa-1:on_demand"]
    spot_a6000 = offers["excesssupply:A6000:wichita-usa-1:spot"]
    assert sold_out.availability_status == Availability.UNAVAILABLE
    assert spot_a6000.availability_status == Availability.AVAILABLE


async def test_amd_and_country_codes(replay_server) -> None:  # type: ignore[no-untyped-def]
    offers = {o.provider_offer_id: o for o in await poll(replay_server(ShadeformAdapter))}
    mi300x = offers["crusoe:MI300Xx8:culpeper-usa-1:on_demand"]
    assert (mi300x.gpu_vendor, mi300x.gpu_memory_gb, mi300x.gpu_count) == ("amd", 192, 8)
    assert offers["hyperstack:H100:montreal-canada-2:on_demand"].country == "CA"
    assert offers["scaleway:L40S:paris-france-1:on_demand"].country == "FR"


async def test_the_key_goes_in_x_api_key(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(ShadeformAdapter)
    await poll(server)
    [request] = server.requests
    assert request.path == PATH and request.query == {}
    assert request.headers["X-API-KEY"] == KEY["api_key"]
    assert "Authorization" not in request.headers


@pytest.mark.parametrize(
    "scenario, error", [("unauthorised", ProviderAuthError), ("rate_limited", ProviderRateLimited)]
)
async def test_recorded_errors_are_typed(replay_server, scenario: str, error: type[Exception]) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(ShadeformAdapter)
    server.scenario = scenario
    with pytest.raises(error):
        await poll(server)


@given(cents=st.integers(1, 10**6), gpus=st.integers(1, 16))
def test_hourly_price_is_whole_instance_cents(cents: int, gpus: int) -> None:
    item = copy.deepcopy(recorded_type("massedcompute", "A6000"))
    item["hourly_price"], item["configuration"]["num_gpus"] = cents, gpus
    offer = normalise(item, item["availability"][0])
    assert offer.price_per_hour == (Decimal(cents) / 100).quantize(Decimal("0.000001")).normalize()
    assert offer.gpu_count == gpus


@given(price=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999"), places=2))
def test_spot_price_is_a_dollar_string(price: Decimal) -> None:
    item = copy.deepcopy(recorded_type("excesssupply", "A6000"))
    entry = {**item["availability"][1], "hourly_price": str(price)}
    offer = normalise(item, entry)
    assert offer.spot and offer.price_per_hour == offer.spot_price == price.normalize()


@given(available=st.booleans())
def test_availability_follows_the_entry_flag(available: bool) -> None:
    item = recorded_type("hyperstack", "H100")
    offer = normalise(item, {**item["availability"][0], "available": available})
    assert offer.availability_status == (Availability.AVAILABLE if available else Availability.UNAVAILABLE)


@given(st.one_of(st.none(), st.text(), st.integers()))
def test_country_never_fails_and_is_iso_shaped(value: object) -> None:
    country = _country(value)
    assert country is None or (len(country) == 2 and country.isupper())


def test_malformed_entries_are_refused() -> None:
    item = recorded_type("excesssupply", "A6000")
    with pytest.raises(ValueError):
        normalise(item, {**item["availability"][0], "available": "yes"})
    with pytest.raises(ValueError):
        normalise(item, {k: v for k, v in item["availability"][1].items() if k != "hourly_price"})
    with pytest.raises(ValueError):
        normalise(item, {**item["availability"][0], "rental_type": "reserved"})


def test_cpu_only_types_are_not_offers() -> None:
    item = copy.deepcopy(recorded_type("hyperstack", "H100"))
    item["configuration"]["num_gpus"] = 0
    assert ShadeformAdapter().normalise({"instance_type": item, "availability": item["availability"][0]}, CTX) is None


def test_an_answer_without_instance_types_is_refused() -> None:
    response = Response(Call(PATH), 200, {}, b'{"instance_types": {"a": 1}}', "shadeform")
    with pytest.raises(ValueError):
        ShadeformAdapter().parse(response, CTX)
