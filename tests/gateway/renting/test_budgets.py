"""A user's own rental budget: set and read it, a provision or scale beyond it is a 402 before
any provider is called, a retry of a rental already made is not refused, an agent of that user
is held to it too, and the reconciler ends a user's running rentals once past it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gpubroker.gateway.identity.plans import Plan
from gpubroker.gateway.models import Agent, Rental, RentalBudget
from gpubroker.gateway.rentals.states import RentalState
from gpubroker.gateway.runtime import GatewayRuntime
from tests.gateway.conftest import GatewayClient
from tests.gateway.renting.conftest import Clouds, offer_of, user_client
from tests.gateway.renting.test_agents import agent_client
from tests.gateway.renting.test_reconciler import until

pytestmark = pytest.mark.django_db(transaction=True)
BUDGET = "/api/v2/rentals/budget"
PROVISION = "/api/v2/rentals/provision"


async def set_budget(client: GatewayClient, **limits: object) -> dict[str, object]:
    answer = await client.request("PUT", BUDGET, body=limits)
    assert answer.status_code == 200, answer.content
    return answer.json()  # type: ignore[no-any-return]


def usd(amount: Decimal) -> str:
    """A budget as the API takes it: to the micro-dollar."""
    return str(amount.quantize(Decimal("0.000001")))


def price_of(runtime: GatewayRuntime, offer_id: str) -> Decimal:
    price = runtime.catalog.offers[offer_id].price_per_hour
    assert price is not None
    return price


async def test_a_budget_is_set_read_replaced_and_checked(renting: GatewayRuntime) -> None:
    client, _ = await user_client(renting)
    unset = (await client.get(BUDGET)).json()
    assert unset == {
        "budget_per_hour": None, "budget_total": None, "spent_per_hour": 0, "spent_total": 0, "updated_at": None
    }  # fmt: skip
    made = await set_budget(client, budget_per_hour="2.5", budget_total=100)
    assert made["budget_per_hour"] == 2.5 and made["budget_total"] == 100 and made["updated_at"]
    assert (await client.get(BUDGET)).json() == made
    replaced = await set_budget(client, budget_total=50)
    assert replaced["budget_per_hour"] is None and replaced["budget_total"] == 50, "both limits are replaced"
    for wrong in ({"budget_total": -1}, {"budget_total": 0}, {"budget_total": "lots"}, {"colour": "red"}):
        answer = await client.request("PUT", BUDGET, body=wrong)
        assert answer.status_code == 422, (wrong, answer.content)
    free, _ = await user_client(renting, Plan.FREE)
    refused = await free.get(BUDGET)
    assert refused.status_code == 403 and "pro" in refused.json()["detail"][0]["message"]


async def test_a_provision_beyond_the_budget_is_a_402_before_any_provider_call(
    renting: GatewayRuntime, clouds: Clouds
) -> None:
    client, user_id = await user_client(renting)
    offer_id = offer_of(renting, clouds, "vastai")
    price = price_of(renting, offer_id)
    await set_budget(client, budget_per_hour=usd(price * Decimal("1.5")))
    first = await client.post(PROVISION, {"offer_id": offer_id}, headers={"Idempotency-Key": "first"})
    assert first.status_code == 201, first.content
    answered = len(clouds.servers["vastai"].emulator.answered)  # type: ignore[union-attr]
    second = await client.post(PROVISION, {"offer_id": offer_id})
    message = second.json()["detail"][0]["message"]
    assert second.status_code == 402 and "over your rental budget" in message and "per hour" in message, message
    assert len(clouds.servers["vastai"].emulator.answered) == answered, "no provider was asked"  # type: ignore[union-attr]
    assert await Rental.objects.filter(user_id=user_id).acount() == 1, "nothing was recorded"
    again = await client.post(PROVISION, {"offer_id": offer_id}, headers={"Idempotency-Key": "first"})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"], "a retry is never refused"
    spent = (await client.get(BUDGET)).json()
    assert Decimal(str(spent["spent_per_hour"])) == price

    await client.delete(f"/api/v2/rentals/{first.json()['id']}")
    await set_budget(client, budget_total=str((await Rental.objects.aget(user_id=user_id)).final_cost))
    spent_all = await client.post(PROVISION, {"offer_id": offer_id})
    message = spent_all.json()["detail"][0]["message"]
    assert spent_all.status_code == 402 and "the whole budget" in message, message


async def test_a_scale_beyond_the_budget_is_a_402(scaling: GatewayRuntime, scaling_clouds: Clouds) -> None:
    client, _ = await user_client(scaling)
    offer_id = offer_of(scaling, scaling_clouds, "hyperstack")
    await set_budget(client, budget_per_hour=usd(price_of(scaling, offer_id) * Decimal("1.5")))
    made = await client.post(PROVISION, {"offer_id": offer_id})
    assert made.status_code == 201, made.content
    bigger = await client.post(
        f"/api/v2/rentals/{made.json()['id']}/scale", {"gpu_count": made.json()["gpu_count"] * 2}
    )
    assert bigger.status_code == 402 and "the scale would put you over" in bigger.json()["detail"][0]["message"]
    assert scaling_clouds.live("hyperstack")[0].gpu_count == made.json()["gpu_count"]


async def test_an_agent_is_held_to_its_users_budget(scaling: GatewayRuntime, scaling_clouds: Clouds) -> None:
    agent, _ = await agent_client(scaling)
    registered = await agent.post("/api/v2/agents/register", {"name": "a", "budget_per_hour": 100, "budget_total": 100})
    assert registered.status_code == 201, registered.content
    user_id = (await Agent.objects.aget(pk=registered.json()["id"])).user_id
    await RentalBudget.objects.acreate(user_id=user_id, budget_per_hour=Decimal("0.000001"))
    offer_id = offer_of(scaling, scaling_clouds, "tensordock")
    refused = await agent.post("/api/v2/agents/actions", {"type": "provision", "params": {"offer_id": offer_id}})
    message = refused.json()["detail"][0]["message"]
    assert refused.status_code == 403 and "user over their rental budget" in message, message
    assert scaling_clouds.cloud("tensordock").instances() == []


async def test_the_reconciler_ends_a_users_running_rentals_once_past_the_budget(
    renting: GatewayRuntime, clouds: Clouds
) -> None:
    client, _ = await user_client(renting)
    offer_id = offer_of(renting, clouds, "vastai")
    made = await client.post(PROVISION, {"offer_id": offer_id})
    assert made.status_code == 201, made.content
    bystander, _ = await user_client(renting)
    theirs = await bystander.post(PROVISION, {"offer_id": offer_id})
    assert theirs.status_code == 201, theirs.content
    await set_budget(client, budget_per_hour=usd(price_of(renting, offer_id) / 2))  # lowered below what runs
    await renting.reconciler.tick()

    async def ended() -> bool:
        return (await client.get(f"/api/v2/rentals/{made.json()['id']}")).json()["state"] == RentalState.TERMINATED

    await until(ended)
    assert [i.tag for i in clouds.live("vastai")] == [f"gpubroker-{theirs.json()['id']}"], "only the user's end"
