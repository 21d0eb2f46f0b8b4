"""Paperspace plugin: one availability call per documented (machine type, datacenter), no prices."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpubroker.core.adapter import Call, PollContext, Response
from gpubroker.core.errors import ProviderAuthError, ProviderRateLimited
from gpubroker.core.offer import Availability
from gpubroker.core.testkit.conformance import ProviderConformance
from gpubroker.core.testkit.polling import poll_replay
from gpubroker_paperspace.adapter import MACHINE_TYPES, REGIONS, PaperspaceAdapter

CTX = PollContext(PaperspaceAdapter.info, datetime(2026, 11, 26, tzinfo=UTC))


class TestPaperspaceConformance(ProviderConformance):
    adapter = PaperspaceAdapter
    publishes_prices = False


def answer(machine_type: str, region: str, body: bytes) -> Response:
    call = Call("/v1/machine-availability", params={"machineType": machine_type, "region": region})
    return Response(call, 200, {}, body, "paperspace")


def test_one_call_per_documented_pair() -> None:
    calls = list(PaperspaceAdapter().calls(CTX))
    pairs = {(c.params["machineType"], c.params["region"]) for c in calls}
    assert len(pairs) == len(calls) == sum(len(m.regions) for m in MACHINE_TYPES.values())
    assert ("H100", "ny2") in pairs and ("H100", "ams1") not in pairs
    assert all(c.path == "/v1/machine-availability" and c.method == "GET" for c in calls)
    assert {c.params["region"] for c in calls} == set(REGIONS)


async def test_available_pairs_become_offers_without_a_price(replay_server) -> None:  # type: ignore[no-untyped-def]
    offers = await poll_replay(PaperspaceAdapter, replay_server(PaperspaceAdapter), credentials={"api_key": "k"})
    assert len(offers) == 32 - 7  # seven pairs are recorded as not available
    by_id = {o.provider_offer_id: o for o in offers}
    assert "H100x8/ny2" not in by_id
    h100 = by_id["H100/ny2"]
    assert (h100.gpu_type, h100.gpu_count, h100.gpu_memory_gb) == ("H100", 1, 80)
    assert h100.price_per_hour is None and h100.availability_status == Availability.AVAILABLE
    a6000 = by_id["A6000x2/ca1"]
    assert (a6000.gpu_type, a6000.gpu_count, a6000.country) == ("RTX A6000", 2, "US")
    assert by_id["A4000/ams1"].country == "NL"


def test_an_unavailable_pair_is_no_offer() -> None:
    assert PaperspaceAdapter().parse(answer("H100", "ny2", b'{"available": false}'), CTX).records == []


@pytest.mark.parametrize("body", [b'{"available": "yes"}', b'{"available": 1}', b"{}"])
def test_a_malformed_answer_is_refused(body: bytes) -> None:
    with pytest.raises((KeyError, ValueError)):
        PaperspaceAdapter().parse(answer("H100", "ny2", body), CTX)


@given(st.sampled_from(sorted((n, r) for n, m in MACHINE_TYPES.items() for r in m.regions)))
def test_every_documented_pair_normalises_to_a_known_gpu(pair: tuple[str, str]) -> None:
    name, region = pair
    [record] = PaperspaceAdapter().parse(answer(name, region, b'{"available": true}'), CTX).records
    offer = PaperspaceAdapter().normalise(record, CTX)
    assert offer is not None
    assert offer.gpu_type is not None and offer.price_per_hour is None
    assert offer.gpu_count == MACHINE_TYPES[name].count
    assert offer.gpu_memory_gb == MACHINE_TYPES[name].memory_gb
    assert offer.region == region and offer.country == REGIONS[region]


async def test_api_key_is_sent_as_bearer_token(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(PaperspaceAdapter)
    await poll_replay(PaperspaceAdapter, server, credentials={"api_key": "ps-key-123"})
    assert server.requests and all(r.headers["Authorization"] == "Bearer ps-key-123" for r in server.requests)
    assert {r.query["machineType"] for r in server.requests} == set(MACHINE_TYPES)


@pytest.mark.parametrize(
    "scenario, error", [("unauthorised", ProviderAuthError), ("rate_limited", ProviderRateLimited)]
)
async def test_recorded_error_answers_are_typed(replay_server, scenario: str, error: type[Exception]) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(PaperspaceAdapter)
    server.scenario = scenario
    with pytest.raises(error):
        await poll_replay(PaperspaceAdapter, server, credentials={"api_key": "k"})
