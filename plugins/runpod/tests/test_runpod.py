"""RunPod plugin: the GraphQL join, per-GPU -> per-pod prices, stock words, auth and errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpubroker.core.adapter import Call, PollContext, Response
from gpubroker.core.errors import ProviderAuthError, ProviderBadResponse, ProviderHTTPError, ProviderRateLimited
from gpubroker.core.offer import Availability
from gpubroker.core.recordings import Recordings
from gpubroker.core.renting import RentalRequest, rental_tag
from gpubroker.core.testkit.conformance import ProviderConformance
from gpubroker.core.testkit.polling import poll_replay
from gpubroker_runpod.adapter import RunpodAdapter, data_center_country, stock_availability
from gpubroker_runpod.emulator import RunpodDialect

CTX = PollContext(RunpodAdapter.info, datetime(2026, 11, 26, tzinfo=UTC))


class TestRunpodConformance(ProviderConformance):
    adapter = RunpodAdapter
    rental_request = RentalRequest(
        tag=rental_tag("conformance"), provider_offer_id="US-TX-3/NVIDIA H100 80GB HBM3/1", gpu_count=1
    )
    rental_instance_id = "x7kq2m9v"
    emulator = RunpodDialect


def recorded_body() -> dict[str, Any]:
    assert RunpodAdapter.recordings is not None
    [exchange] = Recordings(RunpodAdapter.recordings).exchanges("default")
    return json.loads(exchange.response.body)


def parse(body: dict[str, Any]) -> list[dict[str, Any]]:
    response = Response(Call("/graphql", "POST"), 200, {}, json.dumps(body).encode(), "runpod")
    return [dict(r) for r in RunpodAdapter().parse(response, CTX).records]


def offers_by_id() -> dict[str, Any]:
    adapter = RunpodAdapter()
    offers = [adapter.normalise(r, CTX) for r in parse(recorded_body())]
    return {o.provider_offer_id: o for o in offers if o is not None}


def test_one_offer_per_data_center_gpu_and_pod_size() -> None:
    offers = offers_by_id()
    # US-TX-3: H100 x1..8 + RTX 4090 x1..4; EU-RO-1: H200 x1..8 + MI300X x1..8; CA-MTL-1: RTX PRO 6000 x1..4.
    # The RTX 3090 (Community Cloud only) and the unlisted EUR-IS-1 give nothing.
    assert len(offers) == 8 + 4 + 8 + 8 + 4
    assert not any("EUR-IS-1" in key or "RTX 3090" in key for key in offers)


def test_a_recorded_pod_comes_out_right() -> None:
    offer = offers_by_id()["US-TX-3/NVIDIA H100 80GB HBM3/8"]
    assert offer.name == "8x H100 SXM"
    assert offer.gpu_type == "H100" and offer.gpu_vendor == "nvidia" and offer.gpu_memory_gb == 80
    assert offer.price_per_hour == Decimal("21.52")  # 8 x $2.69
    assert offer.spot_price == Decimal("14")  # 8 x $1.75
    assert offer.region == "US-TX-3" and offer.country == "US"
    assert offer.availability_status == Availability.AVAILABLE
    assert offer.spot is False and offer.currency == "USD"


def test_stock_words_map_per_data_center() -> None:
    offers = offers_by_id()
    assert offers["US-TX-3/NVIDIA GeForce RTX 4090/2"].availability_status == Availability.LIMITED
    assert offers["EU-RO-1/NVIDIA H200/1"].availability_status == Availability.AVAILABLE
    mi300x = offers["EU-RO-1/AMD Instinct MI300X OAM/1"]
    assert mi300x.availability_status == Availability.UNAVAILABLE  # listed with an empty stock word
    assert mi300x.spot_price is None and mi300x.gpu_vendor == "amd"
    assert offers["EU-RO-1/NVIDIA H200/1"].country == "RO"
    assert offers["CA-MTL-1/NVIDIA RTX PRO 6000 Blackwell Server Edition/4"].country == "CA"


@pytest.mark.parametrize(
    "word, expected",
    [
        ("High", Availability.AVAILABLE),
        ("Medium", Availability.AVAILABLE),
        ("Low", Availability.LIMITED),
        ("", Availability.UNAVAILABLE),
        (None, Availability.UNAVAILABLE),
    ],
)
def test_stock_availability(word: str | None, expected: Availability) -> None:
    assert stock_availability(word) == expected


def test_unknown_stock_word_is_refused() -> None:
    with pytest.raises(ValueError):
        stock_availability("Plentiful-ish")


@pytest.mark.parametrize(
    "dc, country",
    [
        ("US-TX-3", "US"),
        ("US-KS-2", "US"),
        ("CA-MTL-1", "CA"),
        ("EU-RO-1", "RO"),
        ("EUR-IS-2", "IS"),
        ("AP-JP-1", "JP"),
        ("OC-AU-1", "AU"),
        ("SEA-SG-1", "SG"),
        ("weird", None),
    ],
)
def test_data_center_country(dc: str, country: str | None) -> None:
    assert data_center_country(dc) == country


@given(
    price=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("50"), places=2),
    spot=st.one_of(st.none(), st.decimals(min_value=Decimal("0.01"), max_value=Decimal("50"), places=2)),
    largest=st.integers(1, 10),
)
def test_per_gpu_prices_become_per_pod_prices(price: Decimal, spot: Decimal | None, largest: int) -> None:
    gpu = {
        "id": "NVIDIA L40S", "displayName": "L40S", "memoryInGb": 48, "secureCloud": True,
        "maxGpuCountSecureCloud": largest, "securePrice": float(price),
        "secureSpotPrice": None if spot is None else float(spot),
    }  # fmt: skip
    body = {"data": {"gpuTypes": [gpu], "dataCenters": [
        {"id": "EU-SE-1", "listed": True, "gpuAvailability": [{"gpuTypeId": "NVIDIA L40S", "stockStatus": "High"}]},
    ]}}  # fmt: skip
    records = parse(body)
    assert [r["gpuCount"] for r in records] == list(range(1, largest + 1))
    for record in records:
        offer = RunpodAdapter().normalise(record, CTX)
        assert offer is not None
        assert offer.price_per_hour == price * record["gpuCount"]
        assert offer.spot_price == (None if spot is None else spot * record["gpuCount"])
        assert offer.price_per_gpu_hour == price


def test_a_zero_secure_price_is_not_an_offer() -> None:
    record = parse(recorded_body())[0]
    record["gpuType"] = {**record["gpuType"], "securePrice": 0}
    assert RunpodAdapter().normalise(record, CTX) is None


def test_graphql_errors_in_a_200_answer_are_refused() -> None:
    body = {"errors": [{"message": "Something went wrong"}], "data": None}
    with pytest.raises(ValueError, match="Something went wrong"):
        parse(body)


async def test_api_key_is_sent_as_bearer_token_and_the_query_names_both_roots(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(RunpodAdapter)
    await poll_replay(RunpodAdapter, server, credentials={"api_key": "rp-test-key"})
    [request] = server.requests
    assert request.method == "POST" and request.path == "/graphql"
    assert request.headers["Authorization"] == "Bearer rp-test-key"
    assert "api_key" not in request.query
    query = json.loads(request.body)["query"]
    assert "gpuAvailability" in query and "securePrice" in query and "secureSpotPrice" in query


@pytest.mark.parametrize(
    "scenario, error",
    [
        ("unauthorised", ProviderAuthError),
        ("graphql_error", ProviderHTTPError),
        ("rate_limited", ProviderRateLimited),
    ],
)
async def test_recorded_error_answers_are_typed(replay_server, scenario: str, error: type[Exception]) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(RunpodAdapter)
    server.scenario = scenario
    with pytest.raises(error):
        await poll_replay(RunpodAdapter, server, credentials={"api_key": "k"})


def test_an_answer_without_data_is_refused() -> None:
    with pytest.raises((KeyError, ProviderBadResponse)):
        parse({"unexpected": True})
