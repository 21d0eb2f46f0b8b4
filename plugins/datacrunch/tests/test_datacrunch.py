"""Verda (DataCrunch) plugin: the OAuth2 token chain, the join of prices, locations and
availability, on-demand vs spot, currencies and units."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpubroker.core.adapter import Call, PollContext, Response
from gpubroker.core.errors import ProviderAuthError, ProviderRateLimited
from gpubroker.core.fx import rates
from gpubroker.core.offer import Availability, Offer
from gpubroker.core.testkit.conformance import ProviderConformance
from gpubroker.core.testkit.polling import poll_replay
from gpubroker_datacrunch.adapter import INSTANCE_TYPES_PATH, VerdaAdapter, gpu_model

CTX = PollContext(VerdaAdapter.info, datetime(2026, 11, 26, tzinfo=UTC))
CREDENTIALS = {"client_id": "verda-client-id", "client_secret": "verda-client-secret"}


class TestVerdaConformance(ProviderConformance):
    adapter = VerdaAdapter


async def poll(server: Any) -> dict[str, Offer]:
    offers = await poll_replay(VerdaAdapter, server, credentials=CREDENTIALS)
    return {o.provider_offer_id: o for o in offers}


def kind(**overrides: Any) -> dict[str, Any]:
    base = {
        "instance_type": "1H100.80S.30V", "price_per_hour": "2.29", "spot_price": "0.99", "currency": "usd",
        "cpu": {"number_of_cores": 30}, "memory": {"size_in_gigabytes": 120}, "storage": {"description": "dynamic"},
        "gpu": {"description": "1x H100 SXM5 80GB", "number_of_gpus": 1}, "gpu_memory": {"size_in_gigabytes": 80},
    }  # fmt: skip
    return {**base, **overrides}


def record(mode: str = "on_demand", available: bool = True, **overrides: Any) -> dict[str, Any]:
    return {
        "instance_type": kind(**overrides),
        "location": "FIN-01",
        "country": "FI",
        "mode": mode,
        "available": available,
    }


async def test_the_token_is_fetched_with_the_client_credentials_and_sent_on_every_later_call(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(VerdaAdapter)
    await poll(server)
    token, *rest = server.requests
    assert (token.method, token.path) == ("POST", "/v1/oauth2/token")
    assert json.loads(token.body) == {"grant_type": "client_credentials", **CREDENTIALS}
    assert "Authorization" not in token.headers
    assert [(r.path, r.query) for r in rest] == [
        ("/v1/locations", {}),
        ("/v1/instance-availability", {"is_spot": "false"}),
        ("/v1/instance-availability", {"is_spot": "true"}),
        ("/v1/instance-types", {"currency": "usd"}),
    ]
    assert {r.headers["Authorization"] for r in rest} == {"Bearer eyJhbGciOiJSUzI1NiJ9.recorded-access-token"}
    assert not any(CREDENTIALS["client_secret"] in r.body.decode() for r in rest)


async def test_offers_per_type_location_and_mode(replay_server) -> None:  # type: ignore[no-untyped-def]
    offers = await poll(replay_server(VerdaAdapter))
    # 6 GPU types x 3 locations, on demand and spot, less the L40S, which has no spot price.
    assert len(offers) == 6 * 3 * 2 - 3
    assert not any(key.startswith("CPU.") for key in offers)
    on_demand = offers["8H100.80S.176V/FIN-01/on_demand"]
    assert on_demand.price_per_hour == Decimal("18.32") and on_demand.spot_price == Decimal("7.92")
    assert (on_demand.gpu_name, on_demand.gpu_type, on_demand.gpu_count, on_demand.gpu_memory_gb) == (
        "H100 SXM5 80GB", "H100", 8, 80.0,
    )  # fmt: skip
    assert (on_demand.vcpus, on_demand.ram_gb, on_demand.storage_gb) == (176, 1480, None)
    assert on_demand.availability_status == Availability.AVAILABLE and on_demand.country == "FI"
    assert on_demand.spot is False
    spot = offers["8H100.80S.176V/FIN-01/spot"]
    assert spot.spot is True and spot.price_per_hour == spot.spot_price == Decimal("7.92")
    assert spot.availability_status == Availability.UNAVAILABLE  # not in the spot availability list


async def test_availability_is_per_location_and_mode(replay_server) -> None:  # type: ignore[no-untyped-def]
    offers = await poll(replay_server(VerdaAdapter))
    assert offers["1B200.30V/FIN-03/on_demand"].availability_status == Availability.AVAILABLE
    assert offers["1B200.30V/FIN-03/spot"].availability_status == Availability.AVAILABLE
    assert offers["1B200.30V/FIN-01/on_demand"].availability_status == Availability.UNAVAILABLE
    assert offers["1L40S.20V/ICE-01/on_demand"].country == "IS"
    assert offers["1A100.22V/FIN-01/on_demand"].price_per_hour == Decimal("1.797")


def test_a_type_without_a_spot_price_has_no_spot_offer() -> None:
    assert VerdaAdapter().normalise(record("spot", spot_price="0"), CTX) is None
    offer = VerdaAdapter().normalise(record(spot_price=None), CTX)
    assert offer is not None and offer.spot_price is None


def test_cpu_only_types_are_not_offers() -> None:
    cpu = record(gpu={"description": "", "number_of_gpus": 0}, gpu_memory={"size_in_gigabytes": 0})
    assert VerdaAdapter().normalise(cpu, CTX) is None


@given(
    price=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100"), places=3),
    currency=st.sampled_from(["usd", "eur", "USD", "EUR"]),
    gpus=st.integers(1, 8),
)
def test_prices_are_whole_instance_and_converted_to_usd(price: Decimal, currency: str, gpus: int) -> None:
    gpu = {"description": f"{gpus}x H100 SXM5 80GB", "number_of_gpus": gpus}
    priced = record(price_per_hour=str(price), currency=currency, gpu=gpu, gpu_memory={"size_in_gigabytes": 80 * gpus})
    offer = VerdaAdapter().normalise(priced, CTX)
    assert offer is not None
    expected = price if currency.lower() == "usd" else price * rates().usd_per_unit["EUR"]
    assert offer.price_per_hour == expected.quantize(Decimal("0.000001")).normalize()
    assert offer.gpu_memory_gb == 80.0 and offer.gpu_count == gpus


@pytest.mark.parametrize(
    "description, model",
    [
        ("1x H100 SXM5 80GB", "H100 SXM5 80GB"),
        ("8x B200 SXM6 180GB", "B200 SXM6 180GB"),
        ("RTX PRO 6000 96GB", "RTX PRO 6000 96GB"),
    ],
)
def test_gpu_model(description: str, model: str) -> None:
    assert gpu_model(description) == model


def test_an_instance_types_answer_that_is_not_an_array_is_refused() -> None:
    state = {"countries": {"FIN-01": "FI"}, "on_demand": {}, "spot": {}}
    call = Call(INSTANCE_TYPES_PATH, headers={"Authorization": "Bearer t"}, carry=state)
    with pytest.raises(ValueError):
        VerdaAdapter().parse(Response(call, 200, {}, b'{"code": "x"}', "datacrunch"), CTX)


def test_a_token_answer_without_an_access_token_is_refused() -> None:
    with pytest.raises(KeyError):
        VerdaAdapter().parse(Response(Call("/v1/oauth2/token", "POST"), 200, {}, b"{}", "datacrunch"), CTX)


@pytest.mark.parametrize(
    "scenario, error", [("unauthorised", ProviderAuthError), ("rate_limited", ProviderRateLimited)]
)
async def test_recorded_error_answers_are_typed(replay_server, scenario: str, error: type[Exception]) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(VerdaAdapter)
    server.scenario = scenario
    with pytest.raises(error):
        await poll(server)
