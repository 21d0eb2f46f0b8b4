"""Crusoe Cloud plugin: conformance without prices, request signing, and recorded capacities."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpubroker.core.adapter import Call, PollContext, Response
from gpubroker.core.errors import ProviderAuthError, ProviderRateLimited
from gpubroker.core.offer import Availability
from gpubroker.core.testkit.conformance import ProviderConformance
from gpubroker.core.testkit.polling import poll_replay
from gpubroker_crusoe import signing
from gpubroker_crusoe.adapter import CrusoeAdapter, country_of, gpu_of

CTX = PollContext(CrusoeAdapter.info, datetime(2026, 11, 26, tzinfo=UTC))
SECRET = base64.urlsafe_b64encode(b"crusoe-test-secret-bytes").decode().rstrip("=")
KEYS = {"access_key": "AKTESTCRUSOE01", "secret_key": SECRET}


class TestCrusoeConformance(ProviderConformance):
    adapter = CrusoeAdapter
    publishes_prices = False


def capacities() -> list[dict[str, Any]]:
    assert CrusoeAdapter.recordings is not None
    return json.loads(CrusoeAdapter.recordings.joinpath("capacities.json").read_text())["items"]


def parsed() -> list[dict[str, Any]]:
    body = json.dumps({"items": capacities()}).encode()
    return [dict(r) for r in CrusoeAdapter().parse(Response(Call("/v1alpha5/capacities"), 200, {}, body), CTX).records]


def test_an_h100_node_in_virginia_has_capacity_but_no_price() -> None:
    [record] = [r for r in parsed() if r["type"] == "h100-80gb-sxm-ib.8x" and r["location"] == "us-east1-a"]
    assert record["quantity"] == 4  # the larger of the two reports for this type and location
    offer = CrusoeAdapter().normalise(record, CTX)
    assert offer is not None
    assert offer.price_per_hour is None
    assert (offer.gpu_name, offer.gpu_type, offer.gpu_count, offer.gpu_memory_gb) == ("h100-80gb-sxm-ib", "H100", 8, 80)
    assert (offer.region, offer.country, offer.availability_status) == ("us-east1-a", "US", Availability.AVAILABLE)
    assert offer.provider_offer_id == "h100-80gb-sxm-ib.8x@us-east1-a"


def test_an_item_without_the_optional_type_is_skipped() -> None:
    body = json.dumps({"items": [{"location": "us-east1-a", "quantity": 3}, *capacities()]}).encode()
    records = CrusoeAdapter().parse(Response(Call("/v1alpha5/capacities"), 200, {}, body), CTX).records
    assert [dict(r) for r in records] == parsed()


def test_cpu_types_give_no_offer_and_gpu_types_all_resolve() -> None:
    offers = [CrusoeAdapter().normalise(r, CTX) for r in parsed()]
    cpu = [r["type"] for r, o in zip(parsed(), offers, strict=True) if o is None]
    assert sorted(cpu) == ["c1a.16x", "s1a.80x"]
    assert all(o.gpu_type for o in offers if o is not None)


def test_unsized_a100_is_the_40_gb_card_and_iceland_is_is() -> None:
    [record] = [r for r in parsed() if r["type"] == "a100.8x"]
    offer = CrusoeAdapter().normalise(record, CTX)
    assert offer is not None and offer.gpu_memory_gb == 40 and offer.availability_status == Availability.LIMITED
    assert country_of("eu-iceland1-a") == "IS" and country_of("ap-somewhere1-a") is None


@pytest.mark.parametrize(
    "instance_type, expected",
    [
        ("l40s-48gb.10x", ("l40s-48gb", 10)),
        ("gb200-186gb-nvl-ib.4x", ("gb200-186gb-nvl-ib", 4)),
        ("a40.1x", ("a40", 1)),
        ("c1a.2x", None),
        ("s1a.80x", None),
    ],
)
def test_instance_type_names(instance_type: str, expected: tuple[str, int] | None) -> None:
    assert gpu_of(instance_type) == expected


@pytest.mark.parametrize("bad", ["h100-80gb-sxm-ib", "h100.eight", ".8x"])
def test_a_type_without_size_is_malformed(bad: str) -> None:
    with pytest.raises(ValueError):
        gpu_of(bad)


@given(quantity=st.integers(0, 10_000))
def test_quantity_maps_to_availability(quantity: int) -> None:
    offer = CrusoeAdapter().normalise({"type": "l40s-48gb.1x", "location": "us-east1-a", "quantity": quantity}, CTX)
    assert offer is not None and offer.price_per_hour is None
    expected = (
        Availability.UNAVAILABLE if quantity == 0 else Availability.LIMITED if quantity <= 2 else Availability.AVAILABLE
    )
    assert offer.availability_status == expected


def test_the_signature_is_hmac_sha256_of_path_query_verb_and_time() -> None:
    stamp = signing.timestamp(datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC))
    assert stamp == "2026-11-26T12:00:00Z"
    headers = signing.headers(
        "AK1", SECRET, "/v1alpha5/capacities", {"location": "us-east1-a", "b": "x y"}, "get", stamp
    )
    expected_message = b"/v1alpha5/capacities\nb=x+y&location=us-east1-a\nGET\n2026-11-26T12:00:00Z\n"
    digest = hmac.new(b"crusoe-test-secret-bytes", expected_message, hashlib.sha256).digest()
    signature = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    assert headers == {"X-Crusoe-Timestamp": stamp, "Authorization": f"Bearer 1.0:AK1:{signature}"}


@given(secret=st.text(min_size=1, max_size=40))
def test_any_secret_gives_an_unpadded_base64url_signature(secret: str) -> None:
    sig = signing.signature(secret, b"payload")
    assert (
        sig and "=" not in sig and set(sig) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    )


@pytest.mark.asyncio
async def test_requests_are_signed(replay_server) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(CrusoeAdapter)
    assert await poll_replay(CrusoeAdapter, server, credentials=KEYS)
    request = server.requests[0]
    stamp = request.headers["X-Crusoe-Timestamp"]
    expected = signing.signature(SECRET, f"/v1alpha5/capacities\n\nGET\n{stamp}\n".encode())
    assert request.headers["Authorization"] == f"Bearer 1.0:AKTESTCRUSOE01:{expected}"
    assert SECRET not in json.dumps(request.headers)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "scenario, error", [("unauthorised", ProviderAuthError), ("rate_limited", ProviderRateLimited)]
)
async def test_recorded_errors_are_typed(replay_server, scenario: str, error: type[Exception]) -> None:  # type: ignore[no-untyped-def]
    server = replay_server(CrusoeAdapter)
    server.scenario = scenario
    with pytest.raises(error):
        await poll_replay(CrusoeAdapter, server, credentials=KEYS)
