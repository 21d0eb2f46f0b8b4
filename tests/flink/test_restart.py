"""A job cancelled mid-stream and submitted again from its last checkpoint neither loses nor
doubles an alert: its keyed state (the last price of each offer) comes back with it, updates
after the checkpoint are read again, and alerts of the aborted transaction are never seen by
``read_committed`` consumers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from gpubroker.core import events
from tests.conftest import Services
from tests.flink import reference
from tests.flink.cluster import Flink, private_topics, read_committed, updates


def batch(offers: int, steps: range, start: datetime) -> list[events.PriceUpdate]:
    """Each offer's price alternates between 2 and 2.2 (10%) or 2.1 (5%, no alert). Every update
    names 2 as its old price, so only the state the job keeps (the last price seen) tells a move
    of 10% from one of 0%: a job that lost its state would fire wrongly."""
    made = []
    for step in steps:
        for n in range(offers):
            price = ("2", "2.2", "2", "2.1", "2.2", "2.2")[step % 6]
            at = start + timedelta(seconds=step, milliseconds=n)
            made.append(
                events.PriceUpdate("acme", f"r-{n}", "RESTART-GPU", "us", Decimal(2), Decimal(price), at, 1, "US")
            )
    return made


def alert_keys(records: list[tuple[str, bytes]]) -> list[tuple[str, str]]:
    decoded = (events.PriceAlert.decode(value) for _, value in records)
    return sorted((a.offer_id, a.at.isoformat()) for a in decoded if a.kind == "significant_change")


def test_a_job_restarted_from_its_checkpoint_neither_loses_nor_doubles_an_alert(
    flink: Flink, services: Services
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    first, second, third = (
        batch(50, range(0, 40), start),
        batch(50, range(40, 80), start),
        batch(50, range(80, 120), start),
    )
    expected = reference.significant_changes(first + second + third)
    with private_topics(services.kafka_bootstrap) as topics:
        args = topics.job_args(services.kafka_bootstrap, f"test-restart-{topics.updates[5:15]}")
        job_id = flink.submit(*args)
        try:
            updates(services.kafka_bootstrap, topics.updates, first)
            before = reference.significant_changes(first)
            read_committed(
                services.kafka_bootstrap, topics.alerts, lambda got: len(alert_keys(got)) >= len(before), quiet=0
            )
            # Cancelled while it reads the second batch: some of it is past the last checkpoint.
            updates(services.kafka_bootstrap, topics.updates, second)
        finally:
            flink.cancel(job_id)
        checkpoint = flink.latest_checkpoint(job_id)
        updates(services.kafka_bootstrap, topics.updates, third)
        job_id = flink.submit(*args, f"--from={checkpoint}")
        try:
            found = read_committed(
                services.kafka_bootstrap, topics.alerts, lambda got: len(alert_keys(got)) >= len(expected), quiet=5
            )
        finally:
            flink.cancel(job_id)
    assert alert_keys(found) == sorted(expected)
