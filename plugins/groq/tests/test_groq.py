"""Groq plugin: the conformance suite, model records -> LPU offers, availability and auth."""

from __future__ import annotations

import json
from datetime import UTC, datetime
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
from gpubroker_groq.adapter import GPU_NAME, PATH, GroqAdapter

CTX = PollContext(GroqAdapter.info, datetime(2026, 11, 26, tzinfo=UTC))
KEY = {"api_key": "gsk_test0123456789abcdef"}


class TestGroqConformance(ProviderConformance):
    adapter = GroqAdapter
    publishes_prices = False  # Groq bills per token; there is no hourly price anywhere


def recorded_models() -> list[dict[str, Any]]:
    assert GroqAdapter.recordings is not None
    [exchange] = Recordings(GroqAdapter.recordings).exchanges()
    return json.loads(exchange.response.body)["data"]


def model(**fields: Any) -> dict[str, Any]:
    record = {
        "id": "openai/gpt-oss-120b",
        "object": "model",
        "created": 1754408224,
        "owned_by": "OpenAI",
        "active": True,
    }
    return {**record, **fields}


async def poll(server: Any) -> list[Offer]:
    return await poll_replay(GroqAdapter, server, credentials=KEY)


# ------------------------------------------------------------------ recorded answers


async def test_every_listed_model_is_one_lpu_offer(replay_server) -> None:  # type: ignore[no-untyped-def]
    offers = await poll(replay_server(GroqAdapter))
    assert sorted(o.provider_offer_id for o in offers) == sorted(m["id"] for m in recorded_models())
    for offer in offers:
        assert (offer.gpu_name, offer.gpu_type, offer.gpu_vendor, offer.gpu_count) == (GPU_NAME, "LPU", "groq", 1)
        assert offer.gpu_memory_gb is None, "on-chip SRAM only: no memory in GB"
        assert offer.price_per_hour is None and offer.spot_price is None
        assert (offer.region, offer.country) == ("unknown", None)


async def test_a_kimi_model_comes_out_right(replay_server) -> None:  # type: ignore[no-untyped-def]
    offers = {o.provider_offer_id: o for o in await poll(replay_server(GroqAdapter))}
    kimi = offers["moonshotai/kimi-k2-instruct-0905"]
    assert kimi.name == "moonshotai/kimi-k2-instruct-0905 on Groq LPUs"
    assert kimi.availability_status == Availability.AVAILABLE
    assert kimi.currency == "USD" and kimi.price_per_gpu_hour is None


async def test_an_inactive_model_is_kept_as_unavailable(replay_server) -> None:  # type: ignore[no-untyped-def]
    offers = {o.provider_offer_id: o for o in await poll(replay_server(GroqAdapter))}
    inactive = {m["id"] for m in recorded_models() if not m["active"]}
    assert inactive == {"meta-llama/llama-4-maverick-17b-128e-instruct"}
    assert {i for i, o in offers.items() if o.availability_status == Availability.UNAVAILABLE} == inactive


async def test_the_key_is_a_bearer_token_on_the_openai_path(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(GroqAdapter)
    await poll(server)
    [request] = server.requests
    assert (request.method, request.path) == ("GET", PATH)
    assert request.headers["Authorization"] == f"Bearer {KEY['api_key']}"


@pytest.mark.parametrize(
    ("scenario", "error"), [("unauthorised", ProviderAuthError), ("rate_limited", ProviderRateLimited)]
)
async def test_recorded_errors_are_typed(replay_server, scenario: str, error: type[Exception]) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(GroqAdapter)
    server.scenario = scenario
    with pytest.raises(error) as raised:
        await poll(server)
    if isinstance(raised.value, ProviderRateLimited):
        assert raised.value.retry_after == 1  # Groq's retry-after, in seconds


# ------------------------------------------------------------------ normalising (properties)

MODEL_IDS = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=60)


@given(model_id=MODEL_IDS, active=st.booleans(), created=st.integers(0, 2**31), owner=st.text(max_size=20))
def test_any_model_is_one_unpriced_lpu_endpoint(model_id: str, active: bool, created: int, owner: str) -> None:
    offer = GroqAdapter().normalise(model(id=model_id, active=active, created=created, owned_by=owner), CTX)
    assert offer is not None
    assert offer.provider_offer_id == model_id
    assert (offer.gpu_type, offer.gpu_vendor, offer.gpu_count, offer.gpu_memory_gb) == ("LPU", "groq", 1, None)
    assert offer.price_per_hour is None
    assert offer.availability_status == (Availability.AVAILABLE if active else Availability.UNAVAILABLE)


@given(model_id=MODEL_IDS)
def test_the_offer_id_depends_only_on_the_model(model_id: str) -> None:
    first = GroqAdapter().normalise(model(id=model_id, created=1), CTX)
    second = GroqAdapter().normalise(model(id=model_id, created=2, active=False, owned_by="Meta"), CTX)
    assert first is not None and second is not None
    assert first.id == second.id


@given(active=st.one_of(st.none(), st.integers(), st.text(), st.floats(allow_nan=False)))
def test_an_active_flag_that_is_not_a_boolean_is_refused(active: object) -> None:
    with pytest.raises(ValueError, match="active"):
        GroqAdapter().normalise(model(active=active), CTX)


# ------------------------------------------------------------------ malformed records and answers


@pytest.mark.parametrize(
    "record",
    [
        model(id=""),
        model(id="   "),
        model(id=42),
        model(object="list"),
        model(active="true"),
    ],
)
def test_malformed_records_are_refused(record: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        GroqAdapter().normalise(record, CTX)


@pytest.mark.parametrize("missing", ["id", "object", "active"])
def test_records_missing_a_field_are_refused(missing: str) -> None:
    record = model()
    del record[missing]
    with pytest.raises(KeyError):
        GroqAdapter().normalise(record, CTX)


def test_an_answer_without_data_is_refused() -> None:
    with pytest.raises(KeyError):
        GroqAdapter().parse(Response(Call(PATH), 200, {}, b'{"object": "list"}', "groq"), CTX)


def test_an_answer_whose_data_is_not_a_list_is_refused() -> None:
    with pytest.raises(ValueError):
        GroqAdapter().parse(Response(Call(PATH), 200, {}, b'{"object": "list", "data": {}}', "groq"), CTX)
