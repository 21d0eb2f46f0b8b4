"""The worker's diff announces price updates by the same rule as the gateway's stream."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from gpubroker.core.offer import Availability, Offer, offer_id
from gpubroker.workers.diff import diff

AT = datetime(2026, 11, 26, 12, tzinfo=UTC)


def h100(price: str | None) -> Offer:
    return Offer(
        id=offer_id("acme", "h100"), provider="acme", provider_offer_id="h100", name="1x H100", gpu_name="H100",
        gpu_type="H100", gpu_vendor="nvidia", gpu_count=1, gpu_memory_gb=80,
        price_per_hour=None if price is None else Decimal(price), availability_status=Availability.AVAILABLE,
        region="us-east", last_updated=AT,
    )  # fmt: skip


def test_a_move_between_known_prices_is_a_price_update() -> None:
    changes = diff({h100("2.5").id: h100("2.5")}, [h100("2.75")], AT)
    assert [(u.old_price, u.new_price) for u in changes.price_updates] == [(Decimal("2.5"), Decimal("2.75"))]


def test_a_price_appearing_or_disappearing_is_an_upsert_but_no_price_update() -> None:
    for old, new in (("2.5", None), (None, "2.5")):
        changes = diff({h100(old).id: h100(old)}, [h100(new)], AT)
        assert changes.upserts == [h100(new)] and changes.price_updates == []
