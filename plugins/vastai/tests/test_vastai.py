"""Vast.ai plugin: normalisation of the recorded bundles, auth, and every fault as a typed error."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpubroker.core.adapter import Call, PollContext, Response
from gpubroker.core.errors import ProviderHTTPError, ProviderRateLimited
from gpubroker.core.offer import Availability
from gpubroker.core.recordings import Recordings
from gpubroker.core.testkit.polling import poll_replay
from gpubroker.core.testkit.replay import ReplayServer
from gpubroker_vastai.adapter import ALLOCATED_STORAGE_GB, VastAdapter, _location

CTX = PollContext(VastAdapter.info, datetime(2026, 11, 26, tzinfo=UTC))


def recorded_offers() -> list[dict]:  # type: ignore[type-arg]
    assert VastAdapter.recordings is not None
    [exchange] = [x for x in Recordings(VastAdapter.recordings).exchanges() if x.match_json == {"type": "on-demand"}]
    return json.loads(exchange.response.body)["offers"]


async def poll(server: ReplayServer, credentials: dict[str, str] | None = None) -> list:  # type: ignore[type-arg]
    return await poll_replay(VastAdapter, server, credentials=credentials)


async def test_every_recorded_offer_normalises(replay_server) -> None:  # type: ignore[no-untyped-def]
    offers = await poll(replay_server(VastAdapter))
    assert len(offers) == len(recorded_offers())
    assert all(offer.gpu_type is not None for offer in offers), [o.gpu_name for o in offers if o.gpu_type is None]


def test_units_and_prices_follow_vasts_documentation() -> None:
    adapter = VastAdapter()
    for record in recorded_offers():
        offer = adapter.normalise(record, CTX)
        assert offer is not None
        assert offer.price_per_hour == Decimal(str(record["dph_total"])).quantize(Decimal("0.000001")).normalize()
        spot = Decimal(str(record["min_bid"])) + Decimal(str(record["storage_total_cost"]))
        assert offer.spot_price == spot.quantize(Decimal("0.000001")).normalize()
        assert offer.gpu_memory_gb == round(record["gpu_ram"] / 1024, 1)
        assert offer.gpu_count == record["num_gpus"]
        assert offer.storage_gb == ALLOCATED_STORAGE_GB
        assert offer.provider_offer_id == str(record["id"])


def test_gpu_identity_comes_from_the_catalogue() -> None:
    by_raw = {}
    for record in recorded_offers():
        offer = VastAdapter().normalise(record, CTX)
        assert offer is not None
        by_raw[(record["gpu_name"], record["gpu_ram"])] = (offer.gpu_type, offer.gpu_vendor)
    assert by_raw[("RTX 4090", 24564)] == ("RTX 4090", "nvidia")
    assert ("RTX 6000 Ada", "nvidia") in by_raw.values()
    assert ("A100", "nvidia") in by_raw.values()


def test_availability_follows_rentable_and_rented() -> None:
    record = dict(recorded_offers()[0])
    assert VastAdapter().normalise(record, CTX).availability_status == Availability.AVAILABLE  # type: ignore[union-attr]
    record["rented"] = True
    assert VastAdapter().normalise(record, CTX).availability_status == Availability.UNAVAILABLE  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "geolocation, expected",
    [
        ("Texas, US", ("Texas, US", "US")),
        ("CZ", ("CZ", "CZ")),
        (", US", (", US", "US")),
        ("", ("unknown", None)),
        (None, ("unknown", None)),
        ("Somewhere", ("Somewhere", None)),
    ],
)
def test_location(geolocation: str | None, expected: tuple[str, str | None]) -> None:
    assert _location(geolocation) == expected


@given(st.one_of(st.none(), st.text(), st.integers()))
def test_location_never_fails_and_country_is_iso_shaped(value: object) -> None:
    region, country = _location(value)
    assert region
    assert country is None or (len(country) == 2 and country.isupper())


@given(
    price=st.decimals(min_value=Decimal("0.001"), max_value=Decimal("500"), places=6),
    gpus=st.integers(1, 16),
    ram_mib=st.integers(1024, 200_000),
)
def test_normaliser_keeps_whole_instance_price_and_per_gpu_memory(price: Decimal, gpus: int, ram_mib: int) -> None:
    record = {**recorded_offers()[0], "dph_total": float(price), "num_gpus": gpus, "gpu_ram": ram_mib}
    offer = VastAdapter().normalise(record, CTX)
    assert offer is not None
    assert abs(offer.price_per_hour - price) <= Decimal("0.000001")
    assert offer.gpu_count == gpus and offer.gpu_memory_gb == round(ram_mib / 1024, 1)


async def test_api_key_is_sent_as_bearer_token(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(VastAdapter)
    await poll(server, {"api_key": "vk-123456"})
    assert server.requests[0].headers["Authorization"] == "Bearer vk-123456"
    assert json.loads(server.requests[0].body)["type"] == "on-demand"


async def test_no_key_no_header(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(VastAdapter)
    await poll(server)
    assert "Authorization" not in server.requests[0].headers


async def test_empty_search(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(VastAdapter)
    server.scenario = "empty"
    assert await poll(server) == []


@pytest.mark.parametrize("scenario, error", [("bad_request", ProviderHTTPError), ("rate_limited", ProviderRateLimited)])
async def test_error_answers_are_typed(replay_server, scenario: str, error: type[Exception]) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(VastAdapter)
    server.scenario = scenario
    with pytest.raises(error):
        await poll(server)


def test_an_answer_without_offers_is_refused() -> None:
    with pytest.raises(KeyError):
        VastAdapter().parse(Response(Call("/api/v0/bundles/", "POST"), 200, {}, b'{"error": "x"}', "vastai"), CTX)


def test_spot_price_includes_storage_like_the_on_demand_price() -> None:
    # Vast's search documents dph_total as the offer's $/hour with the requested storage
    # (allocated_storage) and min_bid as the lowest interruptible bid, which is for the machine
    # without storage; storage_total_cost is that storage's $/hour (OpenAPI search_offers.yaml,
    # example: dph_base 0.123456 + storage_total_cost 0.123456 ~ dph_total 0.234567). The first
    # recorded offer: dph_base 0.126667 + storage 0.001852 = dph_total 0.128519, min_bid 0.08,
    # so the interruptible price with the same 10 GB of storage is 0.08 + 0.001852 = 0.081852.
    record = next(r for r in recorded_offers() if r["id"] == 29904418)
    offer = VastAdapter().normalise(record, CTX)
    assert offer is not None and offer.storage_gb == ALLOCATED_STORAGE_GB == 10
    assert offer.price_per_hour == Decimal("0.128519")
    assert offer.spot_price == Decimal("0.081852")


def test_system_memory_is_the_offers_share_as_reported() -> None:
    # cpu_ram is "CPU RAM in MB" (search_offers.yaml) for the offer, already its share of the
    # machine: Vast splits a machine's CPUs and RAM between offers in proportion to their GPUs,
    # and publishes the offer's share of cores as cpu_cores_effective beside the machine's
    # cpu_cores, but no second RAM figure. Scaling cpu_ram again by cpu_cores_effective /
    # cpu_cores (as some readers do) would count the share twice: a quarter of a 256-thread
    # machine (cpu_cores_effective 64, gpu_frac 0.25) reporting 128,902 MB has about 126 GB.
    record = {**recorded_offers()[0], "cpu_cores": 256, "cpu_cores_effective": 64.0, "gpu_frac": 0.25}
    record["cpu_ram"] = 128902
    offer = VastAdapter().normalise(record, CTX)
    assert offer is not None and (offer.vcpus, offer.ram_gb) == (64, 125.9)
