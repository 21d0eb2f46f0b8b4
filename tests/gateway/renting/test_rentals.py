"""Renting through the gateway against emulated providers: the API, its refusals, idempotency,
ownership, costs against the provider's bill, and the reconciler."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from decimal import Decimal

import orjson
import pytest

from gpubroker.core.renting import rental_tag
from gpubroker.gateway.identity.plans import Plan
from gpubroker.gateway.models import Rental
from gpubroker.gateway.rentals.states import RentalState
from gpubroker.gateway.runtime import GatewayRuntime
from tests.gateway.renting.conftest import Clouds, offer_of, user_client

pytestmark = pytest.mark.django_db(transaction=True)


def within_one_unit(ours: Decimal, billed: Decimal, price: Decimal, granularity_s: int) -> bool:
    return abs(ours - billed) <= price * granularity_s / 3600


async def test_provision_monitor_and_terminate_with_the_providers_bill(renting: GatewayRuntime, clouds: Clouds) -> None:
    client, _ = await user_client(renting)
    offer_id = offer_of(renting, clouds, "vastai")
    made = await client.post("/api/v2/rentals/provision", {"offer_id": offer_id}, headers={"Idempotency-Key": "k1"})
    assert made.status_code == 201, made.content
    rental = made.json()
    assert rental["state"] == "running" and rental["instance_id"] and rental["currency"] == "USD"
    assert [i.tag for i in clouds.live("vastai")] == [rental_tag(rental["id"])]
    seen = await client.get(f"/api/v2/rentals/{rental['id']}")
    assert seen.status_code == 200 and seen.json()["state"] == "running"
    assert [r["id"] for r in (await client.get("/api/v2/rentals")).json()] == [rental["id"]]
    await asyncio.sleep(1.1)  # more than one billing unit (Vast bills by the second)
    ended = await client.delete(f"/api/v2/rentals/{rental['id']}")
    assert ended.status_code == 200 and ended.json()["state"] == "terminated"
    assert clouds.live("vastai") == []
    instance = clouds.cloud("vastai").instances()[0]
    billed = clouds.cloud("vastai").bill(instance.instance_id)
    final = Decimal(str(ended.json()["final_cost"]))
    assert final > 0 and within_one_unit(final, billed, Decimal(str(rental["price_per_hour"])), 1), (final, billed)


async def test_the_same_key_rents_once_even_concurrently(renting: GatewayRuntime, clouds: Clouds) -> None:
    client, _ = await user_client(renting)
    body = {"offer_id": offer_of(renting, clouds, "vastai")}
    headers = {"Idempotency-Key": "same"}
    answers = await asyncio.gather(*(client.post("/api/v2/rentals/provision", body, headers=headers) for _ in range(3)))
    assert sorted(a.status_code for a in answers) == [200, 200, 201]
    assert len({a.json()["id"] for a in answers}) == 1
    again = await client.post("/api/v2/rentals/provision", body, headers=headers)
    assert again.status_code == 200 and again.json()["id"] == answers[0].json()["id"]
    assert len(clouds.cloud("vastai").instances()) == 1
    other = await client.post(
        "/api/v2/rentals/provision", {"offer_id": offer_of(renting, clouds, "lambdalabs")}, headers=headers
    )
    assert other.status_code == 409 and "Idempotency-Key" in other.content.decode()


@pytest.mark.parametrize(
    ("fault", "kind", "status", "words"),
    [
        ("out_of_capacity", "out_of_capacity", 409, "no capacity"),
        ("insufficient_balance", "insufficient_balance", 402, "insufficient balance"),
        ("auth_failure", "auth", 502, "invalid API key"),
    ],
)
async def test_provider_refusals_are_clear_errors(
    renting: GatewayRuntime, clouds: Clouds, fault: str, kind: str, status: int, words: str
) -> None:
    client, _ = await user_client(renting)
    setattr(clouds.cloud("vastai").faults, fault, True)
    answer = await client.post("/api/v2/rentals/provision", {"offer_id": offer_of(renting, clouds, "vastai")})
    message = answer.json()["detail"][0]["message"]
    assert answer.status_code == status and "vastai" in message and f"({kind})" in message, message
    (rental,) = [r async for r in Rental.objects.all()]
    assert rental.state == RentalState.FAILED and rental.failure_kind == kind and rental.final_cost == 0
    assert clouds.cloud("vastai").instances() == []
    assert words in rental.failure_reason and words in message, "the provider's own reason is named"


async def test_a_terminate_refused_for_the_credentials_says_why_and_can_be_asked_again(
    renting: GatewayRuntime, clouds: Clouds
) -> None:
    client, _ = await user_client(renting)
    made = await client.post("/api/v2/rentals/provision", {"offer_id": offer_of(renting, clouds, "vastai")})
    assert made.status_code == 201, made.content
    cloud = clouds.cloud("vastai")
    cloud.faults.auth_failure = True
    refused = await client.delete(f"/api/v2/rentals/{made.json()['id']}")
    assert refused.status_code == 202 and refused.json()["state"] == "terminating"
    last_error = refused.json()["last_error"]
    assert last_error.startswith("terminate failed: refused (auth)") and "invalid API key" in last_error, last_error
    assert len(cloud.live()) == 1, "the provider did not act"
    cloud.faults.auth_failure = False
    ended = await client.delete(f"/api/v2/rentals/{made.json()['id']}")
    assert ended.status_code == 200 and ended.json()["state"] == "terminated" and cloud.live() == []


async def test_only_the_owner_sees_and_touches_a_rental_and_renting_needs_pro(
    renting: GatewayRuntime, clouds: Clouds
) -> None:
    owner, _ = await user_client(renting)
    made = await owner.post("/api/v2/rentals/provision", {"offer_id": offer_of(renting, clouds, "lambdalabs")})
    assert made.status_code == 201, made.content
    rental_id = made.json()["id"]
    stranger, _ = await user_client(renting)
    assert (await stranger.get(f"/api/v2/rentals/{rental_id}")).status_code == 404
    assert (await stranger.delete(f"/api/v2/rentals/{rental_id}")).status_code == 404
    assert (await stranger.post(f"/api/v2/rentals/{rental_id}/scale", {"gpu_count": 2})).status_code == 404
    assert (await stranger.get("/api/v2/rentals")).json() == []
    assert (await owner.get(f"/api/v2/rentals/{uuid.uuid4()}")).status_code == 404
    free, _ = await user_client(renting, Plan.FREE)
    refused = await free.post("/api/v2/rentals/provision", {"offer_id": offer_of(renting, clouds, "vastai")})
    assert refused.status_code == 403 and "pro" in refused.json()["detail"][0]["message"]
    assert len(clouds.live("lambdalabs")) == 1
    cannot = await owner.post(f"/api/v2/rentals/{rental_id}/scale", {"gpu_count": 2})
    assert cannot.status_code == 409 and "lambdalabs cannot" in cannot.content.decode()


async def test_bad_requests_are_named(renting: GatewayRuntime, clouds: Clouds) -> None:
    client, _ = await user_client(renting)
    unknown = await client.post("/api/v2/rentals/provision", {"offer_id": "nope"})
    assert unknown.status_code == 404 and unknown.json()["detail"][0]["field"] == "offer_id"
    extra = await client.post("/api/v2/rentals/provision", {"offer_id": "x", "colour": "red"})
    assert extra.status_code == 422
    key = await client.post("/api/v2/rentals/provision", {"offer_id": "x"}, headers={"Idempotency-Key": "a" * 300})
    assert key.status_code == 422 and key.json()["detail"][0]["field"] == "Idempotency-Key"
    assert (await client.get("/api/v2/rentals", {"state": "dancing"})).status_code == 422


async def test_every_transition_is_an_event_and_reaches_the_owner(renting: GatewayRuntime, clouds: Clouds) -> None:
    client, user_id = await user_client(renting)
    subscription = renting.hub.subscribe(lambda event: event.kind == "rental", owner=user_id)
    made = await client.post("/api/v2/rentals/provision", {"offer_id": offer_of(renting, clouds, "vastai")})
    await client.delete(f"/api/v2/rentals/{made.json()['id']}")
    seen: list[str] = []
    for _ in range(100):
        batch, _ = await asyncio.wait_for(subscription.next_batch(), timeout=2)
        seen += [orjson.loads(event.data)["state"] for event in batch]
        if "terminated" in seen:
            break
    assert seen == ["requested", "provisioning", "running", "terminating", "terminated"]


async def test_rental_events_reach_the_owners_event_stream_whatever_its_filters(
    renting: GatewayRuntime, clouds: Clouds
) -> None:
    from tests.gateway.test_identity import with_key
    from tests.gateway.test_stream import EventStream

    owner, _ = await user_client(renting)
    stranger, _ = await user_client(renting)
    query = b"provider=lambdalabs"  # offers of another provider: the owner's rentals come all the same
    async with (
        EventStream(renting, query, with_key(owner.headers["x-api-key"])) as mine,
        EventStream(renting, b"", with_key(stranger.headers["x-api-key"])) as theirs,
    ):
        made = await owner.post("/api/v2/rentals/provision", {"offer_id": offer_of(renting, clouds, "vastai")})
        await owner.delete(f"/api/v2/rentals/{made.json()['id']}")
        seen: list[str] = []
        while "terminated" not in seen:
            frame = await mine.next_event()
            if frame["event"] == "rental":
                data = orjson.loads(frame["data"])
                assert data["rental_id"] == made.json()["id"] and "user_id" not in data
                seen.append(data["state"])
        assert seen == ["requested", "provisioning", "running", "terminating", "terminated"]
        with contextlib.suppress(TimeoutError):
            while True:
                assert (await theirs.next_event(timeout_s=0.5))["event"] != "rental", "nobody else's rentals"
