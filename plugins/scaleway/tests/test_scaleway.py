"""Scaleway plugin: the zone chain (server types, then stock), EUR prices, and recorded answers."""

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
from gpubroker.core.recordings import Recordings
from gpubroker.core.testkit.conformance import ProviderConformance
from gpubroker.core.testkit.polling import poll_replay
from gpubroker_scaleway.adapter import (
    PER_PAGE,
    ZONES,
    ScalewayAdapter,
    availability_call,
    availability_of,
    servers_call,
)

CTX = PollContext(ScalewayAdapter.info, datetime(2026, 11, 26, tzinfo=UTC))
GIB = 1024**3


class TestScalewayConformance(ProviderConformance):
    adapter = ScalewayAdapter


def recorded(name: str) -> dict:  # type: ignore[type-arg]
    assert ScalewayAdapter.recordings is not None
    return json.loads(ScalewayAdapter.recordings.joinpath(name).read_bytes())


def record(**overrides: object) -> dict:  # type: ignore[type-arg]
    spec = recorded("servers_fr-par-2_p1.json")["servers"]["H100-SXM-2-80G"]
    return {**spec, "name": "H100-SXM-2-80G", "zone": "fr-par-2", "availability": "available", **overrides}


def response(call: Call, body: object, headers: dict[str, str] | None = None) -> Response:
    return Response(call, 200, headers or {}, json.dumps(body).encode(), "scaleway")


@pytest.mark.asyncio
async def test_default_scenario_lists_every_gpu_type_of_every_gpu_zone(replay_server) -> None:  # type: ignore[no-untyped-def]
    offers = await poll_replay(ScalewayAdapter, replay_server(ScalewayAdapter))
    by_zone: dict[str, int] = {}
    for offer in offers:
        by_zone[offer.region] = by_zone.get(offer.region, 0) + 1
    assert by_zone == {"fr-par-1": 4, "fr-par-2": 16, "pl-waw-2": 6}
    assert {offer.gpu_type for offer in offers} == {"B300", "H100", "L4", "L40S", "RTX 3070", "P100"}


@pytest.mark.asyncio
async def test_pages_and_zones_are_all_requested(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(ScalewayAdapter)
    await poll_replay(ScalewayAdapter, server)
    seen = {(request.path, request.query["page"]) for request in server.requests}
    for zone in ZONES:
        assert (f"/instance/v1/zones/{zone}/products/servers", "1") in seen
    assert ("/instance/v1/zones/fr-par-2/products/servers", "2") in seen
    assert ("/instance/v1/zones/fr-par-2/products/servers/availability", "2") in seen
    # zones that sell no GPU are not asked for their stock
    assert not any(path.startswith("/instance/v1/zones/nl-ams-1/") and "availability" in path for path, _ in seen)
    assert all(request.query["per_page"] == str(PER_PAGE) for request in server.requests)


@pytest.mark.asyncio
async def test_a_recorded_h100_sxm_offer(replay_server) -> None:  # type: ignore[no-untyped-def]
    offers = await poll_replay(ScalewayAdapter, replay_server(ScalewayAdapter))
    [offer] = [o for o in offers if o.provider_offer_id == "fr-par-2/H100-SXM-8-80G"]
    assert offer.price_per_hour == (Decimal("23.028") * Decimal("1.06")).quantize(Decimal("0.000001"))
    assert (offer.gpu_type, offer.gpu_count, offer.gpu_memory_gb) == ("H100", 8, 80.0)
    assert (offer.vcpus, offer.ram_gb, offer.cpu_arch) == (128, 960.0, "x86_64")
    assert offer.availability_status == Availability.LIMITED  # "scarce"
    assert (offer.region, offer.country) == ("fr-par-2", "FR")


@pytest.mark.asyncio
async def test_secret_key_goes_in_x_auth_token(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(ScalewayAdapter)
    await poll_replay(ScalewayAdapter, server, credentials={"secret_key": "scw-secret-1234"})
    assert server.requests and all(r.headers["X-Auth-Token"] == "scw-secret-1234" for r in server.requests)


@pytest.mark.asyncio
async def test_no_key_no_header(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(ScalewayAdapter)
    await poll_replay(ScalewayAdapter, server)
    assert not any("X-Auth-Token" in r.headers for r in server.requests)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "scenario, error", [("unauthorised", ProviderAuthError), ("rate_limited", ProviderRateLimited)]
)
async def test_recorded_errors_are_typed(replay_server, scenario: str, error: type[Exception]) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(ScalewayAdapter)
    server.scenario = scenario
    with pytest.raises(error):
        await poll_replay(ScalewayAdapter, server)


def test_the_chain_carries_gpu_types_into_the_stock_call() -> None:
    adapter = ScalewayAdapter()
    first = servers_call("fr-par-9")
    spec = record()
    page = adapter.parse(response(first, {"servers": {"X": spec, "CPU": {**spec, "gpu": 0}}, "total_count": 2}), CTX)
    [stock_call] = page.follow
    assert stock_call.path.endswith("/availability")
    assert [name for name, _ in stock_call.carry["gpu_types"]] == ["X"]
    page = adapter.parse(response(stock_call, {"servers": {"X": {"availability": "shortage"}}}), CTX)
    assert [(r["name"], r["zone"], r["availability"]) for r in page.records] == [("X", "fr-par-9", "shortage")]


def test_pages_follow_from_the_total_count_header_when_the_body_has_none() -> None:
    adapter = ScalewayAdapter()
    page = adapter.parse(response(servers_call("fr-par-2"), {"servers": {}}, {"x-total-count": "150"}), CTX)
    assert [(c.path, c.params["page"]) for c in page.follow] == [("/instance/v1/zones/fr-par-2/products/servers", "2")]


def test_a_call_outside_the_chain_is_refused() -> None:
    with pytest.raises(ValueError):
        ScalewayAdapter().parse(response(Call("/instance/v1/zones/fr-par-2/products/servers"), {"servers": {}}), CTX)


@pytest.mark.parametrize(
    "word, end_of_service, expected",
    [
        ("available", False, Availability.AVAILABLE),
        ("scarce", False, Availability.LIMITED),
        ("shortage", False, Availability.UNAVAILABLE),
        ("available", True, Availability.UNAVAILABLE),
    ],
)
def test_stock_words(word: str, end_of_service: bool, expected: Availability) -> None:
    assert availability_of({"availability": word, "end_of_service": end_of_service}) == expected


def test_a_type_missing_from_the_stock_answer_is_rejected() -> None:
    with pytest.raises(ValueError):
        ScalewayAdapter().normalise(record(availability=None), CTX)


def test_cpu_types_and_mig_slices_are_not_gpu_offers() -> None:
    assert ScalewayAdapter().normalise(record(gpu=0), CTX) is None
    assert ScalewayAdapter().normalise(record(mig_profile="mig-1g.10gb"), CTX) is None


@given(eur=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("200"), places=4), gpus=st.integers(1, 8))
def test_hourly_price_is_the_whole_instance_in_eur_converted(eur: Decimal, gpus: int) -> None:
    offer = ScalewayAdapter().normalise(record(hourly_price=float(eur), gpu=gpus), CTX)
    assert offer is not None and offer.gpu_count == gpus
    assert offer.price_per_hour == fx.to_usd(eur, "EUR").quantize(Decimal("0.000001")).normalize()


@given(gib=st.integers(1, 300))
def test_gpu_memory_is_bytes_per_gpu(gib: int) -> None:
    spec = record()
    offer = ScalewayAdapter().normalise({**spec, "gpu_info": {**spec["gpu_info"], "gpu_memory": gib * GIB}}, CTX)
    assert offer is not None and offer.gpu_memory_gb == float(gib)


def test_every_recorded_zone_file_is_a_documented_zone() -> None:
    assert ScalewayAdapter.recordings is not None
    paths = {x.path for x in Recordings(ScalewayAdapter.recordings).exchanges()}
    assert {p.split("/")[4] for p in paths} == set(ZONES)


def test_stock_call_is_paged_like_the_servers_call() -> None:
    call = availability_call("pl-waw-2", (), page=3)
    assert call.params == {"per_page": "100", "page": "3"} and call.tag == "pl-waw-2"
