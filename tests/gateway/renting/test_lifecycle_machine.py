"""The rental lifecycle as a Hypothesis state machine, against emulated providers.

Hypothesis runs sequences of API calls (provision, with or without a repeated Idempotency-Key,
and terminate), provider failures (out of capacity, insufficient balance, an instance the
provider ends on its own, a provision whose answer was lost after the instance was created) and
gateway restarts. After every sequence, once the reconciler has run: no instance carrying our tag
runs at a provider unless a live rental in the database owns it, and every ended rental's final
cost is within one billing unit of what the provider's emulator billed for its instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Iterator
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, precondition, rule, run_state_machine_as_test

from gpubroker.core.bus.memory import MemoryBus
from gpubroker.core.renting import InstanceState
from gpubroker.core.testkit.emulator import CloudFaults, Refused
from gpubroker.gateway.models import Rental
from gpubroker.gateway.rentals.states import ENDED, LIVE, RentalState
from gpubroker.gateway.runtime import GatewayRuntime
from tests.gateway.conftest import GatewayClient, asgi_client
from tests.gateway.renting.conftest import (
    PROVIDERS,
    Clouds,
    offer_of,
    renting_runtime,
    renting_settings,
    user_client,
    with_keys,
)

pytestmark = pytest.mark.django_db(transaction=True)
SETTLE_S = 3.0


class World:
    """One event loop, one bus and the gateway runtime on them, kept across examples (starting
    a gateway for every example would make the test slow); a restart replaces the runtime."""

    def __init__(self, clouds: Clouds) -> None:
        self.clouds = clouds
        self.loop = asyncio.new_event_loop()
        self.bus = MemoryBus()
        self.settings = renting_settings(clouds, rental_wait_s=1.0)
        self.runtime: GatewayRuntime = self.run(renting_runtime(self.settings, self.bus))
        self.client, self.user_id = self.run(user_client(self.runtime))

    def run(self, awaitable):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(awaitable)

    def restart(self) -> None:
        self.run(self.runtime.stop())
        self.runtime = self.run(renting_runtime(self.settings, self.bus))
        self.client = GatewayClient(asgi_client(self.runtime), self.client.headers)

    def close(self) -> None:
        self.run(self.runtime.stop())
        self.loop.close()


class RentalLifecycle(RuleBasedStateMachine):
    world: World
    rentals = Bundle("rentals")

    examples = itertools.count()

    def __init__(self) -> None:
        super().__init__()
        self.example = next(self.examples)
        self.restarts = 0
        for provider in PROVIDERS:
            self.world.clouds.cloud(provider).faults = CloudFaults()

    @rule(target=rentals, provider=st.sampled_from(sorted(PROVIDERS)), key=st.sampled_from([None, "a", "b"]))
    def provision(self, provider: str, key: str | None) -> str:
        world = self.world
        offer_id = offer_of(world.runtime, world.clouds, provider)
        headers = {"Idempotency-Key": f"{self.example}-{key}"} if key else {}
        answer = world.run(world.client.post("/api/v2/rentals/provision", {"offer_id": offer_id}, headers=headers))
        assert answer.status_code in (200, 201, 202, 402, 409), answer.content
        if answer.status_code in (402, 409):
            return ""
        return str(answer.json()["id"])

    @rule(rental=rentals)
    def terminate(self, rental: str) -> None:
        if not rental:
            return
        answer = self.world.run(self.world.client.delete(f"/api/v2/rentals/{rental}"))
        assert answer.status_code in (200, 202), answer.content

    @rule(
        provider=st.sampled_from(sorted(PROVIDERS)), fault=st.sampled_from(["out_of_capacity", "insufficient_balance"])
    )
    def provider_refuses(self, provider: str, fault: str) -> None:
        faults = self.world.clouds.cloud(provider).faults
        setattr(faults, fault, not getattr(faults, fault))

    @rule(provider=st.sampled_from(sorted(PROVIDERS)))
    def provider_ends_an_instance(self, provider: str) -> None:
        cloud = self.world.clouds.cloud(provider)
        live = cloud.live()
        if live:
            cloud.vanish(live[0].instance_id)
            self.reconcile()

    @rule(provider=st.sampled_from(sorted(PROVIDERS)))
    def crash_after_the_provider_created_it(self, provider: str) -> None:
        """The gateway recorded the rental and the worker's create succeeded, but the answer was
        lost (a gateway killed at that moment): only the tag ties the instance to the rental."""
        world = self.world
        offer = world.runtime.catalog.offers[offer_of(world.runtime, world.clouds, provider)]
        assert offer.price_per_hour is not None
        rental = world.run(
            Rental.objects.acreate(
                user_id=world.user_id, provider=provider, offer_id=offer.id, provider_offer_id=offer.provider_offer_id,
                gpu_count=1, price_per_hour=offer.price_per_hour, state="provisioning",
                billing_granularity_s=world.runtime.rentals.providers[provider].adapter.billing_granularity_s,
            )
        )  # fmt: skip
        with contextlib.suppress(Refused):  # refused: the rental was left provisioning with nothing created
            world.clouds.cloud(provider).create(tag=rental.tag, offer_id=offer.provider_offer_id, gpu_count=1)

    @precondition(lambda self: self.restarts < 1)
    @rule()
    def restart_the_gateway(self) -> None:
        self.restarts += 1
        self.world.restart()

    @rule()
    def reconcile(self) -> None:
        world = self.world
        world.run(world.runtime.reconciler.tick())
        world.run(asyncio.sleep(0.15))  # the workers' listings come back and are applied

    def teardown(self) -> None:
        """End every rental, let the reconciler catch up, then check the invariants."""
        world = self.world
        for provider in PROVIDERS:
            world.clouds.cloud(provider).faults = CloudFaults()
        for _ in range(3):
            self.reconcile()
            live = world.run(_rows(Rental.objects.filter(state__in=[s.value for s in LIVE])))
            for rental in live:
                world.run(world.client.delete(f"/api/v2/rentals/{rental.pk}"))
        self.reconcile()
        rows = {str(r.pk): r for r in world.run(_rows(Rental.objects.all()))}
        for provider in PROVIDERS:
            cloud = world.clouds.cloud(provider)
            for instance in cloud.instances():
                rental = rows.get(instance.tag.removeprefix("gpubroker-"))
                if instance.state(cloud.clock()) is not InstanceState.TERMINATED:
                    assert rental is not None and rental.state not in ENDED, f"{provider} runs {instance} unknown"
                    continue
                if rental is None or rental.state != RentalState.TERMINATED or rental.final_cost is None:
                    continue
                unit = rental.price_per_hour * rental.billing_granularity_s / 3600
                billed = cloud.bill(instance.instance_id)
                assert abs(rental.final_cost - billed) <= unit + Decimal("0.000002"), (
                    rental.pk,
                    rental.final_cost,
                    billed,
                )


async def _rows(query):  # type: ignore[no-untyped-def]
    return [row async for row in query]


@pytest.fixture
def world(clean_env: pytest.MonkeyPatch, clouds: Clouds) -> Iterator[World]:
    with_keys(clean_env)
    world = World(clouds)
    yield world
    world.close()


def test_no_sequence_leaks_an_instance_or_misbills(world: World) -> None:
    RentalLifecycle.world = world
    run_state_machine_as_test(
        RentalLifecycle,
        settings=settings(
            max_examples=8, stateful_step_count=6, deadline=None, suppress_health_check=list(HealthCheck)
        ),
    )
