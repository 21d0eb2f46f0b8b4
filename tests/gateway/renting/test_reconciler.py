"""The reconciler: instances the database does not know, rentals whose instance vanished, and
one leader across gateway instances."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from gpubroker.core.renting import InstanceState, rental_tag
from gpubroker.gateway.models import Lease, Rental
from gpubroker.gateway.rentals.reconciler import LEASE, Reconciler
from gpubroker.gateway.rentals.states import RentalState
from gpubroker.gateway.runtime import GatewayRuntime
from tests.gateway.renting.conftest import Clouds, offer_of, user_client

pytestmark = pytest.mark.django_db(transaction=True)


async def until(check: Callable[[], object], timeout_s: float = 5.0) -> None:
    for _ in range(int(timeout_s / 0.02)):
        if await check() if asyncio.iscoroutinefunction(check) else check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition did not come true in time")


async def test_an_instance_created_before_a_crash_is_adopted(renting: GatewayRuntime, clouds: Clouds) -> None:
    """The gateway recorded the rental and the provider created it, but the answer never came
    back into the database: the tag ties the instance to its rental."""
    _, user_id = await user_client(renting)
    offer = renting.catalog.offers[offer_of(renting, clouds, "vastai")]
    assert offer.price_per_hour is not None
    rental = await Rental.objects.acreate(
        user_id=user_id, provider="vastai", offer_id=offer.id, provider_offer_id=offer.provider_offer_id,
        gpu_count=1, price_per_hour=offer.price_per_hour, billing_granularity_s=1, state="provisioning",
    )  # fmt: skip
    created = clouds.cloud("vastai").create(tag=rental.tag, offer_id=offer.provider_offer_id, gpu_count=1)
    await renting.reconciler.tick()

    async def adopted() -> bool:
        await rental.arefresh_from_db()
        return rental.state == RentalState.RUNNING

    await until(adopted)
    assert rental.instance_id == created.instance_id and rental.started_at is not None
    assert [i.instance_id for i in clouds.live("vastai")] == [created.instance_id]


async def test_a_tagged_instance_no_rental_owns_is_terminated(renting: GatewayRuntime, clouds: Clouds) -> None:
    cloud = clouds.cloud("lambdalabs")
    stray = cloud.create(tag=rental_tag(str(uuid.uuid4())), offer_id="gpu_1x_a10/us-east-1", gpu_count=1)
    mine = cloud.create(tag="my-own-notebook", offer_id="gpu_1x_a10/us-east-1", gpu_count=1)
    await renting.reconciler.tick()
    await until(lambda: stray.state(cloud.clock()) is InstanceState.TERMINATED)
    assert mine.state(cloud.clock()) is InstanceState.RUNNING, "instances without our tag are not ours to end"


async def test_a_vanished_instance_closes_its_rental_with_its_cost(renting: GatewayRuntime, clouds: Clouds) -> None:
    client, _ = await user_client(renting)
    made = await client.post("/api/v2/rentals/provision", {"offer_id": offer_of(renting, clouds, "vastai")})
    assert made.status_code == 201, made.content
    await asyncio.sleep(0.3)
    cloud = clouds.cloud("vastai")
    cloud.vanish(made.json()["instance_id"])
    await renting.reconciler.tick()

    async def closed() -> bool:
        return (await client.get(f"/api/v2/rentals/{made.json()['id']}")).json()["state"] == "terminated"

    await until(closed)
    rental = (await client.get(f"/api/v2/rentals/{made.json()['id']}")).json()
    billed = cloud.bill(made.json()["instance_id"])
    assert abs(Decimal(str(rental["final_cost"])) - billed) <= Decimal(str(rental["price_per_hour"])) / 3600 * 2


async def test_one_reconciler_leads_until_its_lease_lapses(renting: GatewayRuntime) -> None:
    first = Reconciler(renting.bus, renting.rentals, renting.settings, holder="first")
    second = Reconciler(renting.bus, renting.rentals, renting.settings, holder="second")
    assert await first.acquire() and not await second.acquire()
    assert await first.acquire(), "the leader renews its lease"
    await Lease.objects.filter(name=LEASE).aupdate(expires_at=timezone.now() - timedelta(seconds=1))
    assert await second.acquire() and not await first.acquire()
    await second.release()
    assert await first.acquire()
