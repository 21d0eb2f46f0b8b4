from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from gpubroker.core.offer import Availability, Offer, offer_id


def make(**overrides: object) -> Offer:
    fields: dict[str, object] = {
        "id": offer_id("acme", "42"),
        "provider": "acme",
        "provider_offer_id": "42",
        "name": "1x H100",
        "gpu_name": "H100 SXM",
        "gpu_type": "H100",
        "gpu_vendor": "nvidia",
        "gpu_count": 1,
        "gpu_memory_gb": 80,
        "price_per_hour": Decimal("2.5"),
        "availability_status": Availability.AVAILABLE,
        "region": "us-east",
        "last_updated": datetime(2026, 11, 1, tzinfo=UTC),
    }
    fields.update(overrides)
    return Offer(**fields)  # type: ignore[arg-type]


def test_offer_id_is_deterministic_and_distinct_per_provider() -> None:
    assert offer_id("vastai", "1") == offer_id("vastai", "1")
    assert offer_id("vastai", "1") != offer_id("runpod", "1")
    assert offer_id("vastai", "1") != offer_id("vastai", "2")


def test_prices_are_exact_decimals_quantised_to_micro_dollars() -> None:
    offer = make(price_per_hour=Decimal("0.12851851851851853"))
    assert offer.price_per_hour == Decimal("0.128519")
    assert offer.to_json()["price_per_hour"] == 0.128519


def test_json_round_trip() -> None:
    offer = make(spot_price=Decimal("1.1"), compliance_tags=("verified",))
    assert Offer.model_validate(offer.to_json()) == offer


@pytest.mark.parametrize(
    "field, value",
    [
        ("price_per_hour", Decimal("0")),
        ("gpu_count", 0),
        ("provider", "Bad Name"),
        ("country", "usa"),
        ("last_updated", datetime(2026, 1, 1)),
    ],
)
def test_invalid_offers_are_rejected(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        make(**{field: value})


def test_price_per_gpu_hour() -> None:
    assert make(gpu_count=8, price_per_hour=Decimal("20")).price_per_gpu_hour == Decimal("2.5")


@pytest.mark.parametrize(
    ("gpu_name", "count", "given", "expected"),
    [
        ("H100 SXM5 80GB", 8, (), ("nvlink", "sxm")),
        ("H100 SXM5 80GB", 1, (), ("sxm",)),  # one GPU links nothing
        ("NVIDIA H100 NVL", 2, (), ("nvlink", "pcie")),  # NVL cards are sold bridged
        ("H100-80G-PCIe-NVLink", 2, (), ("nvlink", "pcie")),
        ("NVIDIA A100 80GB PCIe", 4, (), ("pcie",)),
        ("hyperstack_H100x8-NVLINK", 8, ("infiniband",), ("nvlink", "infiniband")),
        ("RTX 4090", 8, (), ()),  # the name says nothing: unknown, never guessed
    ],
)
def test_the_interconnect_is_what_the_provider_and_the_gpu_name_state(
    gpu_name: str, count: int, given: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    from gpubroker.core.adapter import PollContext
    from gpubroker.core.provider import ProviderInfo

    info = ProviderInfo(name="acme", display_name="Acme", api_base_url="https://api.acme.test")
    ctx = PollContext(info, datetime(2026, 11, 26, tzinfo=UTC))
    built = ctx.offer(
        provider_offer_id="x", name="x", gpu_name=gpu_name, gpu_count=count, price_per_hour=Decimal(1),
        availability_status=Availability.AVAILABLE, region="r", interconnect=given,
    )  # fmt: skip
    assert built.interconnect == expected
