"""Hyperstack plugin: pricebook -> flavors chain, per-GPU -> per-VM prices, spot, stock and auth."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpubroker.core.adapter import Call, PollContext, Response
from gpubroker.core.errors import ProviderAuthError, ProviderBadResponse, ProviderRateLimited
from gpubroker.core.offer import Availability, Offer
from gpubroker.core.renting import RentalRequest, rental_tag
from gpubroker.core.testkit.conformance import ProviderConformance
from gpubroker.core.testkit.polling import poll_replay
from gpubroker.core.testkit.replay import Faults
from gpubroker_hyperstack.adapter import FLAVORS_PATH, HyperstackAdapter, pricebook, region_country
from gpubroker_hyperstack.emulator import HyperstackDialect

CTX = PollContext(HyperstackAdapter.info, datetime(2026, 11, 26, tzinfo=UTC))


class TestHyperstackConformance(ProviderConformance):
    adapter = HyperstackAdapter
    rental_request = RentalRequest(
        tag=rental_tag("conformance"),
        provider_offer_id="CANADA-1/n3-H100x1",
        gpu_count=1,
        options={"environment_name": "default-CANADA-1", "key_name": "ops"},
    )
    rental_instance_id = "4711"
    emulator = HyperstackDialect


async def poll(server: Any, key: str = "hs-key") -> dict[str, Offer]:
    offers = await poll_replay(HyperstackAdapter, server, credentials={"api_key": key})
    return {o.provider_offer_id: o for o in offers}


def flavors_answer(body: dict[str, Any], prices: dict[str, str]) -> Response:
    call = Call(FLAVORS_PATH, carry={"prices": prices})
    return Response(call, 200, {}, json.dumps(body).encode(), "hyperstack")


async def test_the_pricebook_is_asked_first_and_carried_to_the_flavors_call(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(HyperstackAdapter)
    offers = await poll(server, "hs-secret")
    assert [r.path for r in server.requests] == ["/v1/pricebook", "/v1/core/flavors"]
    assert all(r.headers["api_key"] == "hs-secret" for r in server.requests)
    assert "Authorization" not in server.requests[0].headers
    # 23 GPU flavors; the B200 has no pricebook entry, CPU flavors are not GPU offers.
    assert len(offers) == 21
    assert not any("B200" in key or "cpu" in key for key in offers)


async def test_a_recorded_flavor_comes_out_right(replay_server) -> None:  # type: ignore[no-untyped-def]
    offers = await poll(replay_server(HyperstackAdapter))
    offer = offers["CANADA-1/n3-A100x2"]
    assert offer.price_per_hour == Decimal("2.7")  # 2 x $1.35 per GPU-hour
    assert (offer.gpu_name, offer.gpu_type, offer.gpu_memory_gb, offer.gpu_count) == ("A100-80G-PCIe", "A100", 80, 2)
    assert (offer.vcpus, offer.ram_gb, offer.storage_gb) == (60, 240, 100)
    assert offer.availability_status == Availability.AVAILABLE and offer.country == "CA"
    assert offer.spot is False and offer.spot_price is None
    assert offers["NORWAY-1/n3-H100-SXM5x8"].price_per_hour == Decimal("19.2")
    assert offers["US-1/n3-H200-SXM5x8"].country == "US"


async def test_spot_flavors_and_out_of_stock_flavors(replay_server) -> None:  # type: ignore[no-untyped-def]
    offers = await poll(replay_server(HyperstackAdapter))
    spot = offers["CANADA-1/n3-A100x1-spot"]
    assert spot.spot is True and spot.price_per_hour == spot.spot_price == Decimal("1.08")
    assert spot.gpu_type == "A100"
    assert offers["NORWAY-1/n3-RTX-A6000x1-spot"].availability_status == Availability.UNAVAILABLE
    assert offers["CANADA-1/n3-A100x8"].availability_status == Availability.UNAVAILABLE


@given(
    value=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("40"), places=6),
    count=st.integers(1, 16),
    stock=st.booleans(),
)
def test_per_gpu_pricebook_values_become_per_vm_prices(value: Decimal, count: int, stock: bool) -> None:
    flavor = {
        "id": 1, "name": f"n3-L40x{count}", "region_name": "CANADA-1", "cpu": 28, "ram": 58.0, "disk": 100,
        "gpu": "L40", "gpu_count": count, "stock_available": stock,
    }  # fmt: skip
    body = {"status": True, "message": "ok", "data": [{"gpu": "L40", "region_name": "CANADA-1", "flavors": [flavor]}]}
    [record] = HyperstackAdapter().parse(flavors_answer(body, {"L40": str(value)}), CTX).records
    offer = HyperstackAdapter().normalise(record, CTX)
    assert offer is not None
    assert offer.price_per_hour == (value * count).quantize(Decimal("0.000001")).normalize()
    assert offer.availability_status == (Availability.AVAILABLE if stock else Availability.UNAVAILABLE)


def test_the_pricebook_follow_up_carries_every_price() -> None:
    body = [{"id": 1, "name": "L40", "value": 1.00}, {"id": 2, "name": "Cloud-SSD", "value": 0.000082}]
    page = HyperstackAdapter().parse(Response(Call("/v1/pricebook"), 200, {}, json.dumps(body).encode()), CTX)
    [follow] = page.follow
    assert page.records == [] and follow.path == FLAVORS_PATH
    assert follow.carry == {"prices": {"L40": "1.0", "Cloud-SSD": "0.000082"}}


def test_a_flavors_answer_without_prices_or_with_status_false_is_refused() -> None:
    ok = {"status": True, "message": "ok", "data": []}
    with pytest.raises(ValueError, match="pricebook"):
        HyperstackAdapter().parse(Response(Call(FLAVORS_PATH), 200, {}, json.dumps(ok).encode()), CTX)
    with pytest.raises(ValueError, match="refused"):
        HyperstackAdapter().parse(flavors_answer({"status": False, "message": "nope"}, {}), CTX)


def test_a_pricebook_that_is_not_an_array_is_refused() -> None:
    with pytest.raises(ValueError):
        pricebook({"data": []}, CTX.observed_at)


def test_the_price_in_force_now_is_kept() -> None:
    # Hyperstack's pricebook entries (PricebookModel: value, original_value, discount_applied,
    # start_time, end_time) hold a price for a time window: H100-80G-SXM5 at 2.10 until
    # 2026-01-01 and 2.40 from then on; the H100-80G-PCIe at 2.20 only from 2099. RTX-A6000 is
    # charged 0.50 now (discount_applied, original_value 0.60 the list price). The price in force
    # on 2026-11-26 is what a VM costs: 2.40, 1.90 and 0.50.
    assert HyperstackAdapter.recordings is not None
    body = json.loads(HyperstackAdapter.recordings.joinpath("pricebook.json").read_text())
    prices = pricebook(body, CTX.observed_at)
    assert (prices["H100-80G-SXM5"], prices["H100-80G-PCIe"], prices["RTX-A6000"]) == ("2.4", "1.9", "0.5")
    before = pricebook(body, datetime(2025, 7, 1, tzinfo=UTC))
    assert before["H100-80G-SXM5"] == "2.1" and "RTX-A6000" not in before


@pytest.mark.parametrize("region, country", [("CANADA-1", "CA"), ("NORWAY-1", "NO"), ("US-1", "US"), ("MARS-1", None)])
def test_region_country(region: str, country: str | None) -> None:
    assert region_country(region) == country


@pytest.mark.parametrize(
    "scenario, error", [("unauthorised", ProviderAuthError), ("rate_limited", ProviderRateLimited)]
)
async def test_recorded_error_answers_are_typed(replay_server, scenario: str, error: type[Exception]) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(HyperstackAdapter)
    server.scenario = scenario
    with pytest.raises(error):
        await poll(server)


async def test_a_malformed_flavors_answer_fails_the_poll(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(HyperstackAdapter)
    server.faults = Faults(malformed=True, every=2)  # the pricebook is fine, the flavors are not
    with pytest.raises(ProviderBadResponse):
        await poll(server)
