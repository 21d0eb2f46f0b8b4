"""Billing's internal calls (cost estimate, final cost) and the state machine's rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from gpubroker.gateway.models.rentals import stretch_cost
from gpubroker.gateway.rentals.states import TRANSITIONS, IllegalTransition, RentalState, check
from gpubroker.gateway.runtime import GatewayRuntime
from tests.gateway.conftest import GatewayClient, asgi_client
from tests.gateway.renting.conftest import Clouds, offer_of, user_client

START = datetime(2026, 12, 1, tzinfo=UTC)


def test_the_state_machine_allows_only_its_moves() -> None:
    check("requested", RentalState.PROVISIONING)
    check(RentalState.RUNNING, RentalState.TERMINATED)  # vanished at the provider
    for ended in (RentalState.TERMINATED, RentalState.FAILED):
        for target in RentalState:
            with pytest.raises(IllegalTransition):
                check(ended, target)
    with pytest.raises(IllegalTransition, match="a running rental cannot become provisioning"):
        check(RentalState.RUNNING, RentalState.PROVISIONING)
    reachable = {RentalState.REQUESTED}
    for _ in TRANSITIONS:
        reachable |= {new for old in reachable for new in TRANSITIONS[old]}
    assert reachable == set(RentalState)


@pytest.mark.parametrize(
    ("seconds", "granularity", "cost"),
    [(0, 60, "0"), (1, 60, "0.060000"), (60, 60, "0.060000"), (61, 60, "0.120000"), (1.5, 1, "0.002000")],
)
def test_a_stretch_bills_every_started_unit_whole(seconds: float, granularity: int, cost: str) -> None:
    assert stretch_cost(Decimal("3.6"), granularity, START, START + timedelta(seconds=seconds)) == Decimal(cost)


@pytest.mark.django_db(transaction=True)
async def test_billing_estimates_and_finalizes(renting: GatewayRuntime, clouds: Clouds) -> None:
    platform, _ = renting.tokens.issue("service:billing", "admin", "service")
    billing = GatewayClient(asgi_client(renting), {"authorization": f"Bearer {platform}"})
    client, _ = await user_client(renting)
    offer_id = offer_of(renting, clouds, "lambdalabs")
    price = renting.catalog.offers[offer_id].price_per_hour
    assert price is not None
    estimate = await billing.post("/internal/v1/rentals/cost-estimate", {"offer_id": offer_id, "hours": 1.5})
    assert estimate.status_code == 200, estimate.content
    assert Decimal(str(estimate.json()["estimated_cost"])) == price * Decimal("1.5")
    made = await client.post("/api/v2/rentals/provision", {"offer_id": offer_id})
    rental_id = made.json()["id"]
    early = await billing.post("/internal/v1/rentals/finalize", {"rental_id": rental_id})
    assert early.status_code == 409 and "running" in early.content.decode()
    so_far = await billing.post("/internal/v1/rentals/cost-estimate", {"rental_id": rental_id, "hours": 1})
    minute = (price / 60).quantize(Decimal("0.000001"))  # one minute started: Lambda bills by the minute
    assert Decimal(str(so_far.json()["cost_so_far"])) == minute
    await client.delete(f"/api/v2/rentals/{rental_id}")
    final = await billing.post("/internal/v1/rentals/finalize", {"rental_id": rental_id})
    assert final.status_code == 200 and Decimal(str(final.json()["final_cost"])) == minute
    both = await billing.post("/internal/v1/rentals/cost-estimate", {"offer_id": offer_id, "rental_id": rental_id})
    assert both.status_code == 422
    assert (await client.post("/internal/v1/rentals/finalize", {"rental_id": rental_id})).status_code in (401, 403)
