"""The analytics job on the real Kafka and Flink cluster, against the plain-Python reference:
significant changes, anomalies, 1-minute market aggregates with late records, and malformed
records sent to the dead-letter topic while the job keeps running."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest

from gpubroker.core import events
from tests.conftest import Services
from tests.flink import reference
from tests.flink.cluster import Flink, RunningJob, private_topics, produce, read_committed, updates

START = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
"""Event times of this module's updates are in the recent past, a few seconds apart."""


@pytest.fixture(scope="module")
def job(flink: Flink, services: Services) -> Iterator[RunningJob]:
    with private_topics(services.kafka_bootstrap) as topics:
        job_id = flink.submit(*topics.job_args(services.kafka_bootstrap, f"test-analytics-{topics.updates[5:15]}"))
        try:
            yield RunningJob(topics, job_id)
        finally:
            flink.cancel(job_id)


def update(offer: str, old: str | Decimal, new: str | Decimal, at: datetime, **more: object) -> events.PriceUpdate:
    fields = {"provider": "acme", "gpu_type": "H100", "region": "us-east", "gpu_count": 1, "country": "US", **more}
    return events.PriceUpdate(
        str(fields["provider"]),
        offer,
        fields["gpu_type"],  # type: ignore[arg-type]
        str(fields["region"]),
        Decimal(old),
        Decimal(new),
        at,
        fields["gpu_count"],  # type: ignore[arg-type]
        fields["country"],  # type: ignore[arg-type]
    )


def alerts(records: list[tuple[str, bytes]], kind: str, offers: set[str]) -> list[events.PriceAlert]:
    decoded = [events.PriceAlert.decode(value) for _, value in records]
    return [a for a in decoded if a.kind == kind and a.offer_id in offers]


def test_every_move_of_more_than_5_percent_fires_exactly_one_alert(job: RunningJob, services: Services) -> None:
    rng = random.Random(7)
    steps = ["1.05", "0.95", "1.0499", "0.9501", "1.0501", "0.9499", "1.2", "0.7", "1.01", "1"]
    sent, at = [], START
    for n in range(40):
        offer, price = f"change-{n}", Decimal(rng.choice(["2", "4", "16", "1.2"]))
        for step in rng.sample(steps, len(steps)):
            new = (price * Decimal(step)).quantize(Decimal("0.000001"))
            at += timedelta(milliseconds=10)
            sent.append(update(offer, price, new, at, gpu_type=f"T-{offer}"))
            price = new
    exactly_five = [u for u in sent if abs(u.new_price - u.old_price) * 20 == u.old_price]
    assert len(exactly_five) > 20  # the boundary is exercised: exactly 5% is not more than 5%
    updates(services.kafka_bootstrap, job.topics.updates, sent)

    expected = reference.significant_changes(sent)
    offers = {u.offer_id for u in sent}
    found = read_committed(
        services.kafka_bootstrap,
        job.topics.alerts,
        lambda got: len(alerts(got, "significant_change", offers)) >= len(expected),
    )
    fired = alerts(found, "significant_change", offers)
    assert sorted((a.offer_id, a.at.isoformat()) for a in fired) == sorted(expected)  # each once, none else
    by_key = {(u.offer_id, u.at.isoformat()): u for u in sent}
    for alert in fired:
        sent_update = by_key[(alert.offer_id, alert.at.isoformat())]
        assert (alert.old_price, alert.new_price) == (sent_update.old_price, sent_update.new_price)
        change = (sent_update.new_price - sent_update.old_price) * 100 / sent_update.old_price
        assert alert.detail["change_pct"] == pytest.approx(float(change), abs=0.006)


def test_a_planted_outlier_is_an_anomaly_and_10000_noisy_updates_are_not(job: RunningJob, services: Services) -> None:
    rng = random.Random(11)
    counts = [1, 2, 4, 8]
    boxes = {f"noise-{n}": counts[n % 4] for n in range(200)}
    prices = {offer: Decimal("2.5") * count for offer, count in boxes.items()}
    sent, at = [], START + timedelta(minutes=5)
    for _ in range(10_000):
        offer = rng.choice(list(boxes))
        # Per-GPU prices within 2% of 2.50: a uniform spread never reaches 3 standard deviations.
        new = (Decimal("2.5") * boxes[offer] * Decimal(rng.uniform(0.98, 1.02))).quantize(Decimal("0.000001"))
        at += timedelta(milliseconds=1)
        sent.append(update(offer, prices[offer], new, at, gpu_type="NOISE-GPU", gpu_count=boxes[offer]))
        prices[offer] = new
    at += timedelta(milliseconds=1)
    outlier = update("noise-3", prices["noise-3"], Decimal("60"), at, gpu_type="NOISE-GPU", gpu_count=8)
    # A GPU type seen for the first time: its first, scattered prices are too few to judge.
    fresh = [
        update(f"fresh-{n}", "1", p, at + timedelta(milliseconds=n + 1), gpu_type="FRESH-GPU")
        for n, p in enumerate(["1", "30", "2", "90", "0.5"])
    ]
    sent += [outlier, *fresh]
    updates(services.kafka_bootstrap, job.topics.updates, sent)

    expected = reference.anomalies(sent)
    assert expected == {(outlier.offer_id, outlier.at.isoformat())}
    offers = {u.offer_id for u in sent}
    found = read_committed(
        services.kafka_bootstrap, job.topics.alerts, lambda got: bool(alerts(got, "anomaly", offers)), timeout=180
    )
    [alert] = alerts(found, "anomaly", offers)
    assert (alert.offer_id, alert.at.isoformat()) == (outlier.offer_id, outlier.at.isoformat())
    assert alert.detail["z_score"] > 3 and alert.detail["samples"] == 100
    assert alert.new_price == Decimal("60") and alert.gpu_type == "NOISE-GPU"


def test_minute_windows_count_late_updates_within_the_lateness_and_drop_later_ones(
    job: RunningJob, services: Services
) -> None:
    minute = START + timedelta(minutes=15)
    gpu = "WINDOW-GPU"

    def at(seconds: float) -> datetime:
        return minute + timedelta(seconds=seconds)

    on_time = [
        update("w-1", "2", "2.1", at(1), gpu_type=gpu, country="US"),
        update("w-2", "16", "16.8", at(10), gpu_type=gpu, gpu_count=8, country="DE"),
        update("w-3", "3", "3.000001", at(20), gpu_type=gpu, gpu_count=2, country=None),
        update("w-1", "2.1", "2.2", at(59.5), gpu_type=gpu, country="US"),
    ]
    # The newest event time moves 5 s past the window: within the 10 s lateness, so an update
    # for the window arriving now still counts.
    ahead = [update("w-4", "1", "1.1", at(65), gpu_type=gpu, country="FR")]
    late = [update("w-2", "16.8", "17.6", at(30), gpu_type=gpu, gpu_count=8, country="DE")]
    # 15 s past: the window closes; an update for it after that is dropped.
    closing = [update("w-4", "1.1", "1.2", at(75), gpu_type=gpu, country="FR")]
    too_late = [update("w-1", "2.2", "9", at(40), gpu_type=gpu, country="US")]
    next_closing = [update("w-4", "1.2", "1.3", at(140), gpu_type=gpu, country="FR")]
    for batch in (on_time, ahead, late, closing):
        updates(services.kafka_bootstrap, job.topics.updates, batch)
        time.sleep(2.5)  # the watermark is emitted every second
    found = read_committed(
        services.kafka_bootstrap, job.topics.aggregates, lambda got: _windows(got, gpu, minute), timeout=60, quiet=0
    )
    updates(services.kafka_bootstrap, job.topics.updates, too_late)
    time.sleep(2.5)
    updates(services.kafka_bootstrap, job.topics.updates, next_closing)
    found = read_committed(
        services.kafka_bootstrap,
        job.topics.aggregates,
        lambda got: _windows(got, gpu, minute + timedelta(minutes=1)),
        timeout=60,
    )

    expected = reference.minute_aggregates(on_time + ahead + late + closing)
    got = {
        (a.gpu_type, a.continent, a.window_start): (a.count, a.min, a.mean, a.max)
        for a in (events.PriceAggregate.decode(value) for _, value in found)
        if a.gpu_type == gpu
    }
    assert got == expected
    first = {key: value for key, value in got.items() if key[2] == minute}
    # 3.000001 / 2 GPUs is 1.5000005 per GPU: rounded half up to six places.
    assert first[(gpu, None, minute)] == (5, Decimal("1.500001"), Decimal("2.02"), Decimal("2.2"))
    assert set(first) == {(gpu, c, minute) for c in (None, "north_america", "europe", "unknown")}
    for _, value in found:
        assert orjson.loads(value)["window_end"].endswith("+00:00")


def _windows(found: list[tuple[str, bytes]], gpu: str, start: datetime) -> bool:
    return any(
        a.gpu_type == gpu and a.window_start == start and a.continent is None
        for a in (events.PriceAggregate.decode(value) for _, value in found)
    )


def test_malformed_updates_go_to_the_dead_letter_topic_with_the_reason_and_the_job_goes_on(
    job: RunningJob, services: Services, flink: Flink
) -> None:
    good = update("dlq-good", "2", "2.5", START + timedelta(minutes=20), gpu_type="DLQ-GPU")
    exponent = orjson.loads(good.encode()) | {"offer_id": "dlq-exponent", "old_price": "2E+1", "new_price": "2.5E+1"}
    bad = {
        "bad-json": b"{not json",
        "bad-schema": orjson.dumps({"schema": "price-update/9"}),
        "bad-missing": orjson.dumps({**orjson.loads(good.encode()), "offer_id": None}),
        "bad-price": orjson.dumps({**orjson.loads(good.encode()), "new_price": "-3"}),
        "bad-at": orjson.dumps({**orjson.loads(good.encode()), "at": "yesterday"}),
        "bad-count": orjson.dumps({**orjson.loads(good.encode()), "gpu_count": 0}),
    }
    produce(services.kafka_bootstrap, job.topics.updates, [*bad.items(), ("dlq-exponent", orjson.dumps(exponent))])
    updates(services.kafka_bootstrap, job.topics.updates, [good])

    letters = read_committed(services.kafka_bootstrap, job.topics.dead_letters, lambda got: len(got) >= len(bad))
    by_key = {key: orjson.loads(value) for key, value in letters}
    assert set(by_key) == set(bad)
    for key, value in bad.items():
        letter = by_key[key]
        assert letter["value"] == value.decode() and letter["topic"] == job.topics.updates and letter["reason"]
    assert "not JSON" in by_key["bad-json"]["reason"]
    assert "schema" in by_key["bad-schema"]["reason"]
    assert "price" in by_key["bad-price"]["reason"] and "at" in by_key["bad-at"]["reason"]
    assert "gpu_count" in by_key["bad-count"]["reason"]

    found = read_committed(
        services.kafka_bootstrap,
        job.topics.alerts,
        lambda got: len(alerts(got, "significant_change", {"dlq-good", "dlq-exponent"})) == 2,
    )
    prices = {
        a.offer_id: (orjson.loads(v)["old_price"], orjson.loads(v)["new_price"])
        for a, (_, v) in ((events.PriceAlert.decode(v), (k, v)) for k, v in found)
        if a.offer_id.startswith("dlq-")
    }
    assert prices == {"dlq-good": ("2", "2.5"), "dlq-exponent": ("20", "25")}  # read either form, written plain
    assert flink.state(job.job_id) == "RUNNING" and flink.restarts(job.job_id) == 0


def test_a_lateness_of_more_than_99_seconds_is_accepted(flink: Flink, services: Services) -> None:
    """The watermark's interval is written with as many digits as the lateness has: SQL's
    default (two) refused a job of 100 s or more when it was submitted."""
    with private_topics(services.kafka_bootstrap) as topics:
        args = topics.job_args(services.kafka_bootstrap, f"test-lateness-{topics.updates[5:15]}")
        job_id = flink.submit(*args, "--lateness-s=150")
        flink.cancel(job_id)
