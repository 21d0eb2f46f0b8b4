"""The rental events' relay: what Kafka acknowledged late is not published again, and what it
refused is."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gpubroker.core.bus import BusError
from gpubroker.gateway.identity.plans import Plan
from gpubroker.gateway.models import Rental, RentalEventRecord
from gpubroker.gateway.rentals import outbox
from gpubroker.gateway.rentals.outbox import EventRelay
from tests.gateway.test_identity import make_user
from tests.workers.test_outbox import ScriptedBus

pytestmark = pytest.mark.django_db(transaction=True)


async def waiting(rental: Rental, *states: str) -> None:
    for state in states:
        await RentalEventRecord.objects.acreate(rental=rental, event={"rental_id": str(rental.pk), "state": state})


async def test_events_acknowledged_after_the_wait_are_not_published_again(monkeypatch: pytest.MonkeyPatch) -> None:
    user, _ = await make_user(Plan.PRO)
    rental = await Rental.objects.acreate(
        user=user, provider="acme", offer_id="o", provider_offer_id="p", gpu_count=1,
        price_per_hour=Decimal(1), billing_granularity_s=1,
    )  # fmt: skip
    await waiting(rental, "requested", "provisioning")
    monkeypatch.setattr(outbox, "ACK_WAIT_S", 0.2)
    bus = ScriptedBus()
    relay = EventRelay(bus)

    bus.mode = "slow"
    with pytest.raises(TimeoutError):
        await relay.relay()
    assert await RentalEventRecord.objects.acount() == 2, "not acknowledged in time: they wait"
    await bus.release()  # Kafka answers late: the producer delivered them after all
    bus.mode = "up"
    assert await relay.relay() == 2
    assert len(bus.published) == 2 and len(bus.landed) == 2, "each published once"

    await waiting(rental, "running")
    bus.mode = "down"
    with pytest.raises(BusError):
        await relay.relay()
    bus.mode = "up"
    assert await relay.relay() == 1 and await RentalEventRecord.objects.acount() == 0
    assert len(bus.published) == 4 and len(bus.landed) == 3, "a refused one is sent again, and lands once"
