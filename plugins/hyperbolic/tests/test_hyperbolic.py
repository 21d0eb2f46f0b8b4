"""Hyperbolic plugin: the conformance suite, cents per GPU-hour, MiB, free-GPU availability and auth."""

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
from gpubroker.core.errors import ProviderHTTPError, ProviderRateLimited
from gpubroker.core.offer import Availability, Offer
from gpubroker.core.recordings import Recordings
from gpubroker.core.testkit.conformance import ProviderConformance
from gpubroker.core.testkit.polling import poll_replay
from gpubroker_hyperbolic.adapter import PATH, HyperbolicAdapter, availability

CTX = PollContext(HyperbolicAdapter.info, datetime(2026, 11, 26, tzinfo=UTC))


class TestHyperbolicConformance(ProviderConformance):
    adapter = HyperbolicAdapter


def recorded_nodes() -> list[dict[str, Any]]:
    assert HyperbolicAdapter.recordings is not None
    [exchange] = Recordings(HyperbolicAdapter.recordings).exchanges()
    return json.loads(exchange.response.body)["instances"]


def recorded_node(node_id: str) -> dict[str, Any]:
    return copy.deepcopy(next(n for n in recorded_nodes() if n["id"] == node_id))


async def poll(server: Any, credentials: dict[str, str] | None = None) -> dict[str, Offer]:
    return {o.provider_offer_id: o for o in await poll_replay(HyperbolicAdapter, server, credentials=credentials)}


async def test_every_machine_is_an_offer(replay_server) -> None:  # type: ignore[no-untyped-def]
    offers = await poll(replay_server(HyperbolicAdapter))
    assert sorted(offers) == sorted(n["id"] for n in recorded_nodes())
    assert all(o.gpu_type is not None for o in offers.values())


async def test_an_8x_h100_machine_comes_out_right(replay_server) -> None:  # type: ignore[no-untyped-def]
    offer = (await poll(replay_server(HyperbolicAdapter)))["sfc-016"]
    assert (offer.gpu_type, offer.gpu_count, offer.gpu_memory_gb) == ("H100", 8, 79.6)  # 81559 MiB
    assert offer.price_per_hour == Decimal("11.92")  # 149 cents per GPU-hour x 8
    assert offer.price_per_gpu_hour == Decimal("1.49")
    assert (offer.vcpus, offer.ram_gb, offer.storage_gb, offer.region) == (224, 2165, 2400, "region-1")
    assert offer.availability_status == Availability.AVAILABLE  # 6 of 8 GPUs free
    assert not offer.spot and offer.resold_from is None


@pytest.mark.parametrize(
    "node_id, expected",
    [
        ("sfc-021", Availability.UNAVAILABLE),  # every GPU rented
        ("antalpha-super-server100132", Availability.UNAVAILABLE),  # machine reserved
        ("gpu-cluster-luxembourg-2-y7323-249912e8", Availability.LIMITED),  # one free GPU
        ("l40s-edge-02", Availability.LIMITED),  # two free GPUs
        ("ns-h200-0407", Availability.AVAILABLE),
    ],
)
async def test_availability_follows_free_gpus(replay_server, node_id: str, expected: Availability) -> None:  # type: ignore[no-untyped-def]
    assert (await poll(replay_server(HyperbolicAdapter)))[node_id].availability_status == expected


async def test_listing_needs_no_key_and_sends_one_when_set(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(HyperbolicAdapter)
    await poll(server)
    await poll(server, {"api_key": "hb-test-key-0123"})
    anonymous, keyed = server.requests
    assert (anonymous.method, anonymous.path, json.loads(anonymous.body)) == ("POST", PATH, {"filters": {}})
    assert "Authorization" not in anonymous.headers
    assert keyed.headers["Authorization"] == "Bearer hb-test-key-0123"


@pytest.mark.parametrize("scenario, error", [("bad_request", ProviderHTTPError), ("rate_limited", ProviderRateLimited)])
async def test_recorded_errors_are_typed(replay_server, scenario: str, error: type[Exception]) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(HyperbolicAdapter)
    server.scenario = scenario
    with pytest.raises(error):
        await poll(server)


@given(cents=st.integers(1, 100_000), gpus=st.integers(1, 16), mib=st.integers(1024, 300_000))
def test_cents_per_gpu_hour_become_whole_machine_dollars(cents: int, gpus: int, mib: int) -> None:
    node = recorded_node("ns-h200-0407")
    node["pricing"]["price"]["amount"], node["gpus_total"], node["gpus_reserved"] = cents, gpus, 0
    node["hardware"]["gpus"] = [{**node["hardware"]["gpus"][0], "ram": mib}] * gpus
    offer = HyperbolicAdapter().normalise(node, CTX)
    assert offer is not None
    assert offer.price_per_hour == (Decimal(cents) * gpus / 100).quantize(Decimal("0.000001")).normalize()
    assert offer.gpu_count == gpus and offer.gpu_memory_gb == round(mib / 1024, 1)


@given(total=st.integers(1, 16), reserved=st.integers(0, 16), reserved_flag=st.booleans(), ready=st.booleans())
def test_availability_mapping(total: int, reserved: int, reserved_flag: bool, ready: bool) -> None:
    record = {"gpus_reserved": reserved, "reserved": reserved_flag, "status": "node_ready" if ready else "node_busy"}
    level = availability(record, total)
    free = max(total - reserved, 0)
    if reserved_flag or not ready or free == 0:
        assert level == Availability.UNAVAILABLE
    else:
        assert level == (Availability.LIMITED if free <= 2 else Availability.AVAILABLE)


def test_cpu_only_machines_are_not_offers() -> None:
    node = recorded_node("sfc-016")
    node["hardware"]["gpus"], node["gpus_total"] = [], 0
    assert HyperbolicAdapter().normalise(node, CTX) is None


def test_a_price_that_is_not_hourly_is_refused() -> None:
    node = recorded_node("sfc-016")
    node["pricing"]["price"]["period"] = "monthly"
    with pytest.raises(ValueError):
        HyperbolicAdapter().normalise(node, CTX)


def test_an_answer_without_instances_is_refused() -> None:
    with pytest.raises(KeyError):
        HyperbolicAdapter().parse(Response(Call(PATH, "POST"), 200, {}, b'{"detail": "x"}', "hyperbolic"), CTX)
