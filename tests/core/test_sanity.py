"""The price sanity guard: real prices pass, unit mistakes are quarantined with a reason."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpubroker.core import units
from gpubroker.core.gpus import CATALOG, resolve
from gpubroker.core.offer import Availability, Offer, offer_id
from gpubroker.core.sanity import MAX_JUMP, PriceGuard, price_band

AT = datetime(2026, 11, 26, 12, tzinfo=UTC)
BANDED = sorted(name for name, spec in CATALOG.items() if price_band(spec) is not None)


def offer(
    gpu: str,
    price: Decimal | str | None,
    *,
    count: int = 1,
    sku: str | None = None,
    memory: float | None = None,
    spot: bool = False,
    provider: str = "acme",
) -> Offer:
    match = resolve(gpu)
    sku = sku or f"{gpu}-{count}"
    return Offer(
        id=offer_id(provider, sku),
        provider=provider,
        provider_offer_id=sku,
        name=f"{count}x {gpu}",
        gpu_name=gpu,
        gpu_type=match.gpu_type,
        gpu_vendor=match.vendor,
        gpu_count=count,
        gpu_memory_gb=memory if memory is not None else match.memory_gb,
        price_per_hour=None if price is None else Decimal(price),
        spot=spot,
        availability_status=Availability.AVAILABLE,
        region="us-east",
        last_updated=AT,
    )


def reason(item: Offer, guard: PriceGuard | None = None) -> str | None:
    judged, held = (guard or PriceGuard()).check([item])
    assert (judged[0].quarantined is None) == (not held)
    return judged[0].quarantined


# ------------------------------------------------------------------ real prices are never quarantined

# (GPU, GPU count, USD per hour for the instance, where the price is published)
REAL_PRICES = [
    ("T4", 1, "4.352", "AWS g4dn.16xlarge, on-demand, us-east-1"),
    ("T4", 1, "0.526", "AWS g4dn.xlarge"),
    ("L4", 1, "3.3968", "AWS g6.16xlarge"),
    ("L40S", 1, "7.5768", "AWS g6e.16xlarge"),
    ("A10G", 1, "4.096", "AWS g5.16xlarge"),
    ("K80", 1, "0.90", "AWS p2.xlarge"),
    ("M60", 1, "0.75", "AWS g3s.xlarge"),
    ("V100", 1, "3.06", "AWS p3.2xlarge"),
    ("H100 80GB HBM3", 8, "98.32", "AWS p5.48xlarge before the 2025 price cut"),
    ("B200", 8, "113.93", "AWS p6-b200.48xlarge"),
    ("A100-SXM4-40GB", 8, "32.77", "AWS p4d.24xlarge"),
    ("Radeon Pro V520", 1, "0.379", "AWS g4ad.xlarge"),
    ("Gaudi HL-205", 8, "13.11", "AWS dl1.24xlarge"),
    ("H100 SXM", 1, "1.80", "Vast.ai, SkyPilot catalog v7"),
    ("H200", 8, "22.59", "Vast.ai, SkyPilot catalog v7"),
    ("RTX 3060", 4, "0.27", "Vast.ai, SkyPilot catalog v7"),
    ("RTX 3090", 2, "0.45", "Vast.ai, SkyPilot catalog v7"),
    ("RTX 4090", 1, "0.40", "Vast.ai, SkyPilot catalog v7"),
    ("RTX 5090", 8, "5.87", "Vast.ai, SkyPilot catalog v7"),
    ("Tesla V100", 1, "0.20", "Vast.ai, SkyPilot catalog v7"),
    ("RTX A4000", 4, "0.56", "Vast.ai, SkyPilot catalog v7"),
    ("A100 SXM4", 4, "2.93", "Vast.ai, SkyPilot catalog v7"),
    ("A100 80GB", 1, "1.19", "RunPod spot, SkyPilot catalog v7"),
    ("P4000", 1, "0.51", "Paperspace"),
    ("M4000", 1, "0.45", "Paperspace"),
    ("A6000", 1, "1.93", "Paperspace, via Shadeform"),
    ("A16", 16, "9.19", "Vultr, via Shadeform"),
    ("TPU v6e", 1, "3.24", "Google Cloud, asia-northeast1 (gpuhunt tpu_pricing.json)"),
    ("TPU v5p", 1, "2.415", "Google Cloud spot, us-east5 (gpuhunt tpu_pricing.json)"),
]


@pytest.mark.parametrize(("gpu", "count", "price", "source"), REAL_PRICES)
def test_real_prices_pass(gpu: str, count: int, price: str, source: str) -> None:
    assert reason(offer(gpu, price, count=count)) is None, source


# ------------------------------------------------------------------ each known unit mistake is caught


def test_cents_read_as_dollars() -> None:
    """Lambda lists an H100 SXM at $2.99 per GPU-hour; in cents that is 299."""
    read_as_dollars = Decimal(299)
    assert reason(offer("H100 SXM", units.dollars_from_cents(299))) is None
    assert "above the plausible" in (reason(offer("H100 SXM", read_as_dollars)) or "")


def test_monthly_read_as_hourly() -> None:
    """A dedicated RTX 4000 SFF Ada server at $184 a month is $0.25 an hour."""
    monthly = Decimal(184)
    assert reason(offer("RTX 4000 SFF Ada", units.monthly_to_hourly(monthly))) is None
    assert "above the plausible" in (reason(offer("RTX 4000 SFF Ada", monthly)) or "")


def test_per_gpu_read_as_per_instance() -> None:
    """A provider quoting $2.99 per GPU-hour for one and for eight H100s: the 8-GPU instance was
    given the per-GPU price as the instance's ($23.92 is right)."""
    one = offer("H100 SXM", "2.99", count=1)
    right = offer("H100 SXM", units.per_instance(Decimal("2.99"), 8), count=8)
    wrong = offer("H100 SXM", "2.99", count=8, sku="H100-8-wrong")
    judged, held = PriceGuard().check([one, right, wrong])
    assert [q.offer.id for q in held] == [wrong.id]
    assert "a per-GPU price taken for the instance's" in held[0].reason
    assert judged[0].quarantined is None and judged[1].quarantined is None


def test_mib_read_as_gb() -> None:
    """An H100 reports 81559 MiB (nvidia-smi); read as GB it is a thousand times too much."""
    assert reason(offer("H100 SXM", "2.99", memory=units.mib_to_gb(81559))) is None
    assert "MiB or MB read as GB" in (reason(offer("H100 SXM", "2.99", memory=81559)) or "")


# ------------------------------------------------------------------ properties


@given(st.sampled_from(BANDED), st.data())
def test_a_price_is_quarantined_exactly_when_it_leaves_the_band(name: str, data: st.DataObject) -> None:
    spec = CATALOG[name]
    band = price_band(spec)
    assert band is not None and 0 < band.low < band.high
    per_gpu = data.draw(st.decimals(min_value=band.low / 10, max_value=band.high * 10, places=6))
    count = data.draw(st.sampled_from([1, 2, 8]))
    item = offer(name, per_gpu * count, count=count, memory=spec.memory_gb[-1] if spec.memory_gb else None)
    assert item.price_per_gpu_hour is not None
    assert (reason(item) is None) == band.holds(item.price_per_gpu_hour)


@given(st.sampled_from(BANDED), st.sampled_from([100, 730]))
def test_cents_and_months_read_as_dollars_per_hour_leave_the_band_from_its_upper_part(name: str, factor: int) -> None:
    """A real price in the band's top 1/factor, multiplied by the mistake, always leaves it."""
    band = price_band(CATALOG[name])
    assert band is not None
    for price in (band.high / factor * Decimal("1.001"), band.high):
        assert price * factor > band.high


@given(st.sampled_from([n for n in BANDED if CATALOG[n].memory_gb]))
def test_every_datasheet_memory_is_plausible_and_its_mib_reading_is_not(name: str) -> None:
    spec = CATALOG[name]
    for size in spec.memory_gb:
        assert spec.plausible_memory(size)
        assert not spec.plausible_memory(size * 1024)


@given(
    st.decimals(min_value=Decimal("0.5"), max_value=Decimal(20), places=3),
    st.decimals(min_value=Decimal("0.001"), max_value=Decimal(1000), places=3),
)
def test_a_jump_of_more_than_ten_times_is_quarantined_until_the_price_returns(trusted: Decimal, new: Decimal) -> None:
    guard = PriceGuard()
    unknown_gpu = "Voodoo 5"  # no band: only the jump applies
    assert reason(offer(unknown_gpu, trusted), guard) is None
    jumped = new > trusted * MAX_JUMP or new * MAX_JUMP < trusted
    assert (reason(offer(unknown_gpu, new), guard) is not None) == jumped
    assert reason(offer(unknown_gpu, trusted), guard) is None  # back to the trusted price


def test_a_quarantined_price_is_never_trusted() -> None:
    guard = PriceGuard()
    assert reason(offer("RTX 4090", "0.40"), guard) is None
    assert reason(offer("RTX 4090", "5.00"), guard) is not None  # 12.5x: held
    assert reason(offer("RTX 4090", "5.00"), guard) is not None  # still held while it stays
    assert reason(offer("RTX 4090", "0.45"), guard) is None


def test_a_restarted_guard_trusts_what_was_published_unless_it_was_quarantined() -> None:
    trusted = offer("RTX 4090", "0.40")
    held = offer("RTX 3090", "3.00").model_copy(update={"quarantined": "moved"})
    guard = PriceGuard([trusted, held])
    assert reason(offer("RTX 4090", "5.00"), guard) is not None
    assert reason(offer("RTX 3090", "3.00"), guard) is None


@given(st.sampled_from(BANDED), st.integers(min_value=1, max_value=8))
def test_judging_keeps_every_field_but_the_verdict_and_is_idempotent(name: str, count: int) -> None:
    band = price_band(CATALOG[name])
    assert band is not None
    item = offer(name, band.high * 2 * count, count=count)
    once, _ = PriceGuard().check([item])
    twice, _ = PriceGuard().check(once)
    assert once == twice
    assert once[0].model_copy(update={"quarantined": None}) == item


def test_a_slice_of_a_gpu_may_cost_its_share() -> None:
    """Vultr sells an A100 in slices; a 4 GB slice costs a fraction of the card."""
    assert reason(offer("A100", "0.03", memory=4)) is None
    assert reason(offer("A100", "0.03", memory=80)) is not None


def test_offers_without_a_price_or_a_known_gpu_only_face_what_applies() -> None:
    assert reason(offer("H100 SXM", None)) is None
    assert reason(offer("Voodoo 5", "9999")) is None  # no band for an unknown GPU
