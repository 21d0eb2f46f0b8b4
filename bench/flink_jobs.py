"""Stream analytics on Flink: the update rate each analysis keeps up with, and price update to
alert latency, against a plain aiokafka consumer doing the >5% check in Python, in one run.

    .venv/bin/python bench/flink_jobs.py [--seconds 120] [--backlog 300000] [--analyses anomaly,market]

Needs the real Kafka and the Flink cluster (``scripts/services up kafka flink``; the
``GPUBROKER_*`` variables from ``scripts/services env``). Every subject gets topics of its own
(3 partitions, as the product's) and, for Flink, a job with that one analysis (plus the
dead-letter route every job has), exactly once with a 1 s checkpoint interval.

For each subject:

1. **drain**: ``--backlog`` updates are written first, then the subject starts and reads them;
   the rate at which its consumer group's committed offsets reach the end, from its first commit
   on (start-up excluded), is its peak rate.
2. **sustain**: updates are written at 70% of that peak for ``--seconds`` (the rate reported is
   the one the writer achieved); the lag (end offset minus committed offset, over the
   partitions) is sampled every 5 s. The subject keeps up when
   the lag of the last sample is no more than 3 seconds' worth and no higher than the median of
   the second half of the samples plus 1 second's worth (it is not growing).

Then **latency**: updates at 200/s for 30 s, one in ten a 10% move, each stamped with the time it
is written (its ``at``); a ``read_committed`` consumer of the alerts topic takes alert time minus
``at``. Flink's alerts are committed with each checkpoint; the baseline publishes its alerts
without a transaction as soon as it has checked the update. Goal: p99 at most 2 s (with a 1 s
watermark interval, the jobs' setting).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpubroker.core import events
from tests.flink.cluster import Flink, Topics, private_topics

GOAL_P99_MS = 2000.0
ANALYSES = ("significant_change", "anomaly", "market")
BASELINE = "aiokafka consumer, >5% check in Python"
SAMPLE_EVERY_S = 5.0
LATENCY_RATE = 200
LATENCY_SECONDS = 30
PARTITIONS = 3
MAX_RATE = 30_000
"""Beyond what one Python process writes a second here: the sustained phase offers at most this."""


@dataclass
class Result:
    subject: str
    peak: float = 0.0
    rate: float = 0.0
    lags: tuple[int, ...] = ()
    kept_up: bool = False
    p50_ms: float | None = None
    p99_ms: float | None = None


def load(count: int, rate: float, seed: int = 1) -> Iterator[tuple[bytes, bytes]]:
    """Price updates for 5,000 offers of 10 GPU types, prices moving within 3% (now and then
    10%), ``rate`` a second of event time from now, made as they are written."""
    rng = random.Random(seed)
    prices = {n: Decimal(rng.choice(["1.2", "2.5", "4", "16"])) for n in range(5000)}
    start = time.time()
    for i in range(count):
        at = datetime.fromtimestamp(start + i / rate, UTC)
        n = rng.randrange(5000)
        step = Decimal(rng.choice(["1.1", "0.9"])) if rng.random() < 0.01 else Decimal(rng.uniform(0.97, 1.03))
        new = (prices[n] * step).quantize(Decimal("0.000001"))
        update = events.PriceUpdate(
            "bench", f"offer-{n}", f"GPU-{n % 10}", "us-east", prices[n], new, at, 1 + n % 8, "US"
        )
        prices[n] = new
        yield update.offer_id.encode(), update.encode()


async def write(
    bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes]], rate: float | None = None, seconds: float = 0
) -> float:
    """Write the records, at ``rate`` per second at most (as fast as it can when None) and for
    ``seconds`` at most (when given); the rate it achieved."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all", compression_type="snappy")
    await producer.start()
    try:
        started, sent = time.monotonic(), 0
        for key, value in records:
            await producer.send(topic, value, key=key)
            sent += 1
            if rate is not None and sent % 500 == 0:
                if seconds and time.monotonic() - started >= seconds:
                    break
                ahead = started + sent / rate - time.monotonic()
                if ahead > 0:
                    await asyncio.sleep(ahead)
        await producer.flush()
        return sent / (time.monotonic() - started)
    finally:
        await producer.stop()


async def lag(bootstrap: str, topic: str, group: str) -> int:
    """End offsets minus the group's committed offsets, summed over the topic's partitions."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        ends = await consumer.end_offsets(partitions)
        committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
        done = {tp: committed[tp].offset for tp in partitions if tp in committed and committed[tp].offset >= 0}
        return sum(ends[tp] - done.get(tp, 0) for tp in partitions)
    finally:
        await consumer.stop()
        await admin.close()


async def baseline(bootstrap: str, topics: Topics, group: str, stop: asyncio.Event) -> None:
    """The same >5% check as the significant-change job, in Python: decode, compare with the
    offer's last price, publish an alert; offsets committed every second (at least once)."""
    consumer = AIOKafkaConsumer(
        topics.updates, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
        auto_offset_reset="earliest", isolation_level="read_committed",
    )  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all", compression_type="snappy")
    await consumer.start()
    await producer.start()
    last: dict[str, Decimal] = {}
    committed_at = time.monotonic()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            for messages in batches.values():
                for message in messages:
                    try:
                        update = events.PriceUpdate.decode(message.value or b"")
                    except ValueError:
                        continue
                    before = last.get(update.offer_id, update.old_price)
                    last[update.offer_id] = update.new_price
                    if abs(update.new_price - before) * 100 > 5 * before:
                        change = float((update.new_price - before) * 100 / before)
                        alert = events.PriceAlert(
                            "significant_change", update.provider, update.offer_id, update.gpu_type,
                            update.region, before, update.new_price, update.at, {"change_pct": round(change, 2)},
                        )  # fmt: skip
                        await producer.send(topics.alerts, alert.encode(), key=update.offer_id.encode())
            if time.monotonic() - committed_at >= 1.0:
                await producer.flush()
                await consumer.commit()
                committed_at = time.monotonic()
    finally:
        await producer.flush()
        await consumer.commit()
        await producer.stop()
        await consumer.stop()


async def drain_and_sustain(
    bootstrap: str, topics: Topics, group: str, backlog: int, seconds: float,
    start: Callable[[], Awaitable[None]], result: Result,
) -> None:  # fmt: skip
    await write(bootstrap, topics.updates, await asyncio.to_thread(list, load(backlog, 1000.0)))
    await start()
    samples = []  # (time, lag) until the backlog is read
    while not samples or samples[-1][1] > 0:
        samples.append((time.monotonic(), await lag(bootstrap, topics.updates, group)))
        await asyncio.sleep(0.2)
    # From the first commit on: the start-up (a Flink job's tasks start their Python interpreter
    # first) does not count. Commits come about every second, hence the 1 s floor.
    t0, left0 = next((at, left) for at, left in samples if left < backlog)
    result.peak = left0 / max(samples[-1][0] - t0, 1.0)
    target = min(round(result.peak * 0.7, -1), MAX_RATE)
    updates = load(int(target * seconds), target, 2)
    writer = asyncio.create_task(write(bootstrap, topics.updates, updates, target, seconds))
    lags = []
    while not writer.done():
        await asyncio.sleep(SAMPLE_EVERY_S)
        lags.append(await lag(bootstrap, topics.updates, group))
    result.rate = await writer
    result.lags = tuple(lags)
    second_half = lags[len(lags) // 2 :] or [0]
    result.kept_up = lags[-1] <= 3 * result.rate and lags[-1] <= statistics.median(second_half) + result.rate


async def latency(bootstrap: str, topics: Topics, result: Result) -> None:
    """Updates stamped with the time they are written; alerts timed as they become readable."""
    rng = random.Random(3)
    seen: list[float] = []
    consumer = AIOKafkaConsumer(
        topics.alerts, bootstrap_servers=bootstrap, isolation_level="read_committed", auto_offset_reset="latest"
    )
    await consumer.start()
    await asyncio.sleep(1)  # assigned and positioned at the end before the first update
    expected = 0

    async def read() -> None:
        while True:
            for messages in (await consumer.getmany(timeout_ms=100)).values():
                now = time.time()
                for message in messages:
                    alert = events.PriceAlert.decode(message.value or b"")
                    if alert.provider == "latency":
                        seen.append((now - alert.at.timestamp()) * 1000)

    reader = asyncio.create_task(read())
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks="all")
    await producer.start()
    try:
        for n in range(LATENCY_RATE * LATENCY_SECONDS):
            jump = n % 10 == 0
            new = Decimal("2.2") if jump else Decimal(str(round(2 + rng.uniform(-0.02, 0.02), 4)))
            update = events.PriceUpdate(
                "latency", f"latency-{n}", "GPU-L", "us-east", Decimal(2), new, datetime.now(UTC), 1, "US"
            )
            expected += jump
            await producer.send(topics.updates, update.encode(), key=update.offer_id.encode())
            await asyncio.sleep(1 / LATENCY_RATE)
        await producer.flush()
        deadline = time.monotonic() + 30
        while len(seen) < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
    finally:
        reader.cancel()
        await producer.stop()
        await consumer.stop()
    ordered = sorted(seen)
    assert len(ordered) == expected, f"{result.subject}: {len(ordered)} of {expected} alerts arrived"
    result.p50_ms = ordered[len(ordered) // 2]
    result.p99_ms = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def run_flink(flink: Flink, bootstrap: str, analysis: str, seconds: float, backlog: int) -> Result:
    result = Result(f"Flink job: {analysis}")
    with private_topics(bootstrap, partitions=PARTITIONS) as topics:
        name = f"bench-{analysis}-{topics.updates[5:15]}"
        jobs: list[str] = []

        async def start() -> None:
            args = [*topics.job_args(bootstrap, name), f"--analyses={analysis}"]
            jobs.append(await asyncio.to_thread(flink.submit, *args))

        async def measure() -> None:
            await drain_and_sustain(bootstrap, topics, name, backlog, seconds, start, result)
            if analysis == "significant_change":
                await latency(bootstrap, topics, result)

        try:
            asyncio.run(measure())
        finally:
            for job_id in jobs:
                flink.cancel(job_id)
    return result


def run_baseline(bootstrap: str, seconds: float, backlog: int) -> Result:
    """The baseline consumer runs in a process of its own, as the Flink job does: the load
    generator's work must not share its interpreter."""
    result = Result(BASELINE)
    with private_topics(bootstrap, partitions=PARTITIONS) as topics:
        group = f"bench-baseline-{topics.updates[5:15]}"
        consumers: list[subprocess.Popen[bytes]] = []

        async def start() -> None:
            command = [sys.executable, __file__, "--consume", topics.updates, topics.alerts, group]
            consumers.append(subprocess.Popen(command, env={**os.environ, "GPUBROKER_KAFKA_BOOTSTRAP": bootstrap}))

        async def measure() -> None:
            await drain_and_sustain(bootstrap, topics, group, backlog, seconds, start, result)
            await latency(bootstrap, topics, result)

        try:
            asyncio.run(measure())
        finally:
            for consumer in consumers:
                consumer.send_signal(signal.SIGTERM)
                consumer.wait(timeout=30)
    return result


def consume(bootstrap: str, updates: str, alerts: str, group: str) -> None:
    async def run() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await baseline(bootstrap, Topics(updates, alerts, "", ""), group, stop)

    asyncio.run(run())


def table(results: list[Result]) -> str:
    lines = [
        "| subject | drain (updates/s) | sustained (updates/s) | lag max / last (updates) | keeps up | p50 / p99 ms |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        latency_ms = "" if r.p50_ms is None else f"{r.p50_ms:,.0f} / {r.p99_ms:,.0f}"
        lags = f"{max(r.lags, default=0):,} / {r.lags[-1] if r.lags else 0:,}"
        lines.append(
            f"| {r.subject} | {r.peak:,.0f} | {r.rate:,.0f} | {lags} | {'yes' if r.kept_up else 'NO'} | {latency_ms} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120, help="length of the sustained phase")
    parser.add_argument("--backlog", type=int, default=300_000, help="updates drained to find the peak rate")
    parser.add_argument("--analyses", default=",".join(ANALYSES), help="the Flink jobs to measure")
    parser.add_argument("--consume", nargs=3, metavar=("UPDATES", "ALERTS", "GROUP"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    bootstrap, rest, python = (
        os.environ.get(f"GPUBROKER_{n}") for n in ("KAFKA_BOOTSTRAP", "FLINK_REST", "FLINK_PYTHON")
    )
    if not bootstrap or not rest or not python:
        sys.exit('needs Kafka and Flink: scripts/services up kafka flink && eval "$(scripts/services env)"')
    if args.consume:  # the baseline's own process
        return consume(bootstrap, *args.consume)
    flink = Flink(rest, Path(python).parent / "gpubroker-flink")
    results = [run_baseline(bootstrap, args.seconds, args.backlog)]
    print(table(results), flush=True)
    for analysis in args.analyses.split(","):
        results.append(run_flink(flink, bootstrap, analysis, args.seconds, args.backlog))
        print(table(results[-1:]).splitlines()[-1], flush=True)
    print()
    print(table(results))
    flink_p99 = next(r.p99_ms for r in results if r.subject.endswith("significant_change"))
    print(f"\nprice update -> alert p99: {flink_p99:,.0f} ms (goal: at most {GOAL_P99_MS:,.0f} ms)")


if __name__ == "__main__":
    main()
