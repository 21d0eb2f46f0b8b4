"""OVHcloud plugin: the GPU brick fence, 1e-8 currency units, subsidiaries' currencies, recorded answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpubroker.core import fx
from gpubroker.core.adapter import Call, PollContext, Response
from gpubroker.core.errors import ProviderHTTPError, ProviderRateLimited
from gpubroker.core.offer import Availability
from gpubroker.core.testkit.conformance import ProviderConformance
from gpubroker.core.testkit.polling import poll_replay
from gpubroker_ovhcloud.adapter import PATH, OvhCloudAdapter, availability_of, hourly_price_usd

CTX = PollContext(OvhCloudAdapter.info, datetime(2026, 11, 26, tzinfo=UTC))


class TestOvhCloudConformance(ProviderConformance):
    adapter = OvhCloudAdapter


def catalogue(name: str = "catalog_fr.json") -> dict:  # type: ignore[type-arg]
    assert OvhCloudAdapter.recordings is not None
    return json.loads(OvhCloudAdapter.recordings.joinpath(name).read_bytes())


def addon(plan_code: str, name: str = "catalog_fr.json") -> dict:  # type: ignore[type-arg]
    [found] = [a for a in catalogue(name)["addons"] if a["planCode"] == plan_code]
    return {**found, "ovh_subsidiary": "FR", "ovh_currency": "EUR"}


def parse(body: object, subsidiary: str = "FR") -> list:  # type: ignore[type-arg]
    call = Call(PATH, params={"ovhSubsidiary": subsidiary})
    return OvhCloudAdapter().parse(Response(call, 200, {}, json.dumps(body).encode(), "ovhcloud"), CTX).records


@pytest.mark.asyncio
async def test_default_scenario_lists_hourly_linux_gpu_flavours_of_both_books(replay_server) -> None:  # type: ignore[no-untyped-def]
    offers = await poll_replay(OvhCloudAdapter, replay_server(OvhCloudAdapter))
    assert len(offers) == 40
    assert {o.region for o in offers} == {"subsidiary-FR", "subsidiary-GB"}
    assert not any(o.name.startswith("win-") for o in offers)
    assert {o.gpu_type for o in offers} == {"V100", "V100S", "L4", "L40S", "A100", "H100", "H200", "A10"}


@pytest.mark.asyncio
async def test_a_recorded_h100_offer_in_each_currency(replay_server) -> None:  # type: ignore[no-untyped-def]
    offers = {o.provider_offer_id: o for o in await poll_replay(OvhCloudAdapter, replay_server(OvhCloudAdapter))}
    fr = offers["FR/h100-380.consumption"]
    assert fr.price_per_hour == fx.to_usd(Decimal("2.80"), "EUR")
    assert (fr.gpu_type, fr.gpu_count, fr.gpu_memory_gb, fr.vcpus, fr.ram_gb) == ("H100", 1, 80.0, 30, 380.0)
    assert fr.storage_gb == 200 + 3840
    gb = offers["GB/h100-380.consumption"]
    assert gb.price_per_hour == fx.to_usd(Decimal("2.408"), "GBP").quantize(Decimal("0.000001"))
    h200 = offers["FR/h200-1920.consumption"]
    assert (h200.gpu_count, h200.price_per_hour) == (8, fx.to_usd(Decimal("42"), "EUR"))


@pytest.mark.asyncio
async def test_each_subsidiary_is_asked_for_without_credentials(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(OvhCloudAdapter)
    await poll_replay(OvhCloudAdapter, server)
    assert sorted(r.query["ovhSubsidiary"] for r in server.requests) == ["FR", "GB"]
    assert all(r.path == PATH and "Authorization" not in r.headers for r in server.requests)


@pytest.mark.asyncio
@pytest.mark.parametrize("scenario, error", [("bad_request", ProviderHTTPError), ("rate_limited", ProviderRateLimited)])
async def test_recorded_errors_are_typed(replay_server, scenario: str, error: type[Exception]) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(OvhCloudAdapter)
    server.scenario = scenario
    with pytest.raises(error):
        await poll_replay(OvhCloudAdapter, server)


def test_only_the_gpu_brick_becomes_records() -> None:
    records = parse(catalogue())
    assert records and all(r["blobs"]["commercial"]["brick"] == "gpu" for r in records)
    assert not any(r["planCode"].startswith("ai-") for r in records)  # per-minute managed AI prices stay out


def test_a_catalogue_of_another_subsidiary_is_refused() -> None:
    with pytest.raises(ValueError, match="GB"):
        parse(catalogue(), subsidiary="GB")


def test_monthly_and_windows_plans_are_not_hourly_offers() -> None:
    adapter = OvhCloudAdapter()
    assert adapter.normalise(addon("h100-380.monthly.postpaid"), CTX) is None
    assert adapter.normalise(addon("win-l4-90.consumption"), CTX) is None


@pytest.mark.parametrize(
    "tags, expected",
    [
        (["active"], Availability.AVAILABLE),
        (["active", "new"], Availability.AVAILABLE),
        (["coming_soon"], Availability.UNAVAILABLE),
        (["active", "coming_soon"], Availability.UNAVAILABLE),
        ([], Availability.UNAVAILABLE),
    ],
)
def test_catalogue_tags(tags: list[str], expected: Availability) -> None:
    assert availability_of(tags) == expected


@given(units=st.integers(1, 10**12), currency=st.sampled_from(["EUR", "GBP", "USD"]))
def test_prices_are_1e8_currency_units_converted_to_dollars(units: int, currency: str) -> None:
    pricing = {"capacities": ["consumption"], "price": units, "intervalUnit": "hour"}
    assert hourly_price_usd([pricing], currency) == fx.to_usd(Decimal(units) / 10**8, currency)


@given(gpus=st.integers(1, 8), memory=st.integers(8, 200))
def test_gpu_count_and_memory_come_from_the_technical_blob(gpus: int, memory: int) -> None:
    record = addon("l40s-90.consumption")
    technical = record["blobs"]["technical"]
    gpu = {**technical["gpu"], "number": gpus, "memory": {"size": memory}}
    record = {**record, "blobs": {**record["blobs"], "technical": {**technical, "gpu": gpu}}}
    offer = OvhCloudAdapter().normalise(record, CTX)
    assert offer is not None and (offer.gpu_count, offer.gpu_memory_gb) == (gpus, float(memory))
    assert offer.price_per_hour == fx.to_usd(Decimal("1.40"), "EUR")  # the whole instance, not per GPU


def test_two_hourly_pricings_are_refused() -> None:
    pricing = {"capacities": ["consumption"], "price": 10**8}
    with pytest.raises(ValueError):
        hourly_price_usd([pricing, pricing], "EUR")
