"""Renting with a user's own provider credentials (an Enterprise integration) rather than the
platform's: which credentials a rental uses, that the provider sees them on every call, and that
the reconciler lists each account rentals are made on and reconciles each listing with its own
rentals only."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from gpubroker.core.rental_messages import RentalResult
from gpubroker.core.secrets import PLATFORM_CREDENTIALS, user_credentials_ref
from gpubroker.gateway.identity.plans import Plan
from gpubroker.gateway.models import Rental
from gpubroker.gateway.rentals.states import RentalState
from gpubroker.gateway.runtime import GatewayRuntime
from tests.gateway.conftest import GatewayClient
from tests.gateway.renting.conftest import Clouds, offer_of, user_client
from tests.gateway.renting.test_reconciler import until

pytestmark = pytest.mark.django_db(transaction=True)
INTEGRATIONS = "/api/v2/providers/config/integrations"
OWN_KEY = "users-own-vast-key"


def keys_seen(clouds: Clouds, provider: str, method: str, path_start: str) -> list[str | None]:
    """The Authorization header of each rental call the provider's emulator answered."""
    emulator = clouds.servers[provider].emulator
    assert emulator is not None
    return [
        next((v for k, v in request.headers.items() if k.lower() == "authorization"), None)
        for request, _ in emulator.answered
        if request.method == method and request.path.startswith(path_start)
    ]


async def enterprise_with_integration(renting: GatewayRuntime) -> tuple[GatewayClient, int]:
    client, user_id = await user_client(renting, Plan.ENTERPRISE)
    stored = await client.post(INTEGRATIONS, {"provider": "vastai", "credentials": {"api_key": OWN_KEY}})
    assert stored.status_code == 201, stored.content
    return client, user_id


async def test_an_enterprise_integration_rents_on_the_users_own_account(
    renting: GatewayRuntime, clouds: Clouds
) -> None:
    client, _ = await enterprise_with_integration(renting)
    made = await client.post("/api/v2/rentals/provision", {"offer_id": offer_of(renting, clouds, "vastai")})
    assert made.status_code == 201, made.content
    assert made.json()["credentials"] == "user"
    assert keys_seen(clouds, "vastai", "PUT", "/api/v0/asks/") == [f"Bearer {OWN_KEY}"]
    ended = await client.delete(f"/api/v2/rentals/{made.json()['id']}")
    assert ended.status_code == 200 and ended.json()["state"] == "terminated"
    assert keys_seen(clouds, "vastai", "DELETE", "/api/v0/instances/") == [f"Bearer {OWN_KEY}"]

    for plan in (Plan.PRO, Plan.ENTERPRISE):  # no integration for Vast.ai: the platform's account
        other, _ = await user_client(renting, plan)
        rented = await other.post("/api/v2/rentals/provision", {"offer_id": offer_of(renting, clouds, "vastai")})
        assert rented.status_code == 201 and rented.json()["credentials"] == "platform"
    assert keys_seen(clouds, "vastai", "PUT", "/api/v0/asks/")[1:] == [None, None], (
        "the platform has no Vast.ai key here"
    )


async def test_a_user_whose_integration_is_gone_is_refused_with_the_reason(
    renting: GatewayRuntime, clouds: Clouds
) -> None:
    client, _ = await enterprise_with_integration(renting)
    made = await client.post("/api/v2/rentals/provision", {"offer_id": offer_of(renting, clouds, "vastai")})
    assert made.status_code == 201, made.content
    assert (await client.delete(f"{INTEGRATIONS}/vastai")).status_code == 204
    refused = await client.delete(f"/api/v2/rentals/{made.json()['id']}")
    assert refused.status_code == 202 and "(auth)" in refused.json()["last_error"]
    assert "no longer stored" in refused.json()["last_error"], refused.json()["last_error"]
    assert len(clouds.live("vastai")) == 1, "nothing is done on the user's account without their credentials"


async def test_the_reconciler_lists_each_account_and_applies_a_listing_to_its_own_rentals(
    renting: GatewayRuntime, clouds: Clouds
) -> None:
    client, user_id = await enterprise_with_integration(renting)
    made = await client.post("/api/v2/rentals/provision", {"offer_id": offer_of(renting, clouds, "vastai")})
    assert made.status_code == 201, made.content
    await renting.reconciler.tick()
    await until(lambda: {f"Bearer {OWN_KEY}", None} <= set(keys_seen(clouds, "vastai", "GET", "/api/v0/instances")))

    rental = await Rental.objects.aget(pk=made.json()["id"])
    now = datetime.now(UTC).isoformat()
    empty = {"command_id": "c", "provider": "vastai", "action": "instances", "outcome": "ok", "at": now}
    await renting.reconciler.reconcile(RentalResult(**empty, credentials=PLATFORM_CREDENTIALS))
    await asyncio.sleep(0.1)
    await rental.arefresh_from_db()
    assert rental.state == RentalState.RUNNING, "the platform's listing does not speak for the user's account"
    await renting.reconciler.reconcile(RentalResult(**empty, credentials=user_credentials_ref(user_id)))
    await rental.arefresh_from_db()
    assert rental.state == RentalState.TERMINATED, "the user's own listing no longer shows it: it vanished"
