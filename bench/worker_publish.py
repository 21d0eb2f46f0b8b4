"""Worker publish throughput: normalise + diff + publish through the worker's real path, against
a raw aiokafka producer sending the same bytes, in one run on the same broker.

    .venv/bin/python bench/worker_publish.py [--offers 20000] [--rounds 3]

Needs Kafka (``scripts/services up kafka``; ``GPUBROKER_KAFKA_BOOTSTRAP`` from
``scripts/services env``). Each round gives every offer a new price, so a poll publishes one
offer record and one price update per offer plus a provider event. The project's figure covers
parsing the provider's JSON, normalising every record, diffing against the last snapshot,
writing the durable outbox and delivering it with acks=all; the baseline only sends
pre-encoded messages with the same producer settings. The goal is at least 50% of the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpubroker.core import events
from gpubroker.core.adapter import Call, PollContext, Response
from gpubroker.core.bus.kafka import KafkaBus
from gpubroker.core.provider import ProviderInfo
from gpubroker.core.tracing import context_headers, tracer
from gpubroker.workers.diff import diff
from gpubroker.workers.outbox import Outbox
from gpubroker.workers.poll import Poller, RetryPolicy
from tests.workers.pager import PagerAdapter

GPUS = ["H100 SXM5 80GB", "A100-SXM4-80GB", "RTX 4090", "L40S", "RTX A6000", "H200", "MI300X", "L4"]


class BenchAdapter(PagerAdapter):
    info = ProviderInfo.model_validate(
        {**PagerAdapter.info.model_dump(), "name": "bench_worker", "rate_limit_per_minute": 10**6}
    )


class MemoryTransport:
    """Serves one pre-rendered provider answer: the benchmark measures the worker, not HTTP."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    async def send(self, call: Call) -> Response:
        return Response(call, 200, {"Content-Type": "application/json"}, self.body, "bench_worker")


def provider_answer(offers: int, round_: int) -> bytes:
    data = [
        {
            "sku": f"sku-{i}",
            "gpu": GPUS[i % len(GPUS)],
            "count": 1 + i % 8,
            "usd_per_hour": round(0.2 + (i % 997) / 100 + round_ / 1000, 4),
            "in_stock": i % 5 != 0,
            "region": f"region-{i % 17}",
        }
        for i in range(offers)
    ]
    return orjson.dumps({"data": data, "next": None})


async def project_round(
    poller: Poller, outbox: Outbox, published: dict[str, object]
) -> tuple[list[tuple[str, str, bytes | None, object]], float]:
    started = time.perf_counter()
    with tracer("bench").start_as_current_span("poll"):
        ctx = PollContext(BenchAdapter.info, datetime.now(UTC))
        result = await poller.poll(ctx)
        changes = diff(published, result.offers, ctx.observed_at)
        headers = context_headers()
        records = [(events.OFFERS, o.id, events.encode_offer(o), headers) for o in changes.upserts]
        records += [(events.PRICE_UPDATES, u.offer_id, u.encode(), headers) for u in changes.price_updates]
        event = events.ProviderEvent("bench_worker", "poll.succeeded", ctx.observed_at, {"offers": len(result.offers)})
        records.append((events.PROVIDER_EVENTS, "bench_worker", event.encode(), headers))
        assert await outbox.send(records)
    published.clear()
    published.update({offer.id: offer for offer in result.offers})
    return records, time.perf_counter() - started


async def baseline_round(producer: AIOKafkaProducer, messages: list[tuple[str, bytes, bytes | None, list]]) -> float:  # type: ignore[type-arg]
    started = time.perf_counter()
    futures = [
        await producer.send(topic, value=value, key=key, headers=headers) for topic, key, value, headers in messages
    ]
    await asyncio.gather(*futures)
    return time.perf_counter() - started


async def main(offers: int, rounds: int) -> None:
    bootstrap = os.environ.get("GPUBROKER_KAFKA_BOOTSTRAP")
    if not bootstrap:
        sys.exit('bench: set GPUBROKER_KAFKA_BOOTSTRAP (eval "$(scripts/services env)")')
    bus = KafkaBus(bootstrap)
    await bus.start()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, compression_type="snappy", linger_ms=5
    )
    await producer.start()
    project_rates, baseline_rates = [], []
    published: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as state:
        outbox = Outbox(Path(state) / "bench.sqlite3", bus)
        transport = MemoryTransport(provider_answer(offers, 0))
        poller = Poller(BenchAdapter(), transport, retry=RetryPolicy(attempts=1))
        await project_round(poller, outbox, published)  # warm-up: first snapshot
        try:
            for round_ in range(1, rounds + 1):
                transport.body = provider_answer(offers, round_)
                records, seconds = await project_round(poller, outbox, published)
                project_rates.append(len(records) / seconds)
                # the same records: keys, values and headers
                messages = [(topic, key.encode(), value, list(headers)) for topic, key, value, headers in records]
                baseline_rates.append(len(messages) / await baseline_round(producer, messages))
        finally:
            for offer_id in published:  # leave no benchmark offers in the catalogue
                await producer.send(events.OFFERS, value=None, key=offer_id.encode())
            await producer.flush()
            outbox.close()
            await producer.stop()
            await bus.stop()
    project, baseline = statistics.median(project_rates), statistics.median(baseline_rates)
    print(f"worker publish throughput, {offers} offers changing per poll, {rounds} rounds (median)")
    print(f"{'variant':<44}{'messages/s':>12}")
    print(f"{'gpubroker worker (normalise+diff+outbox+publish)':<44}{project:>12,.0f}")
    print(f"{'raw aiokafka producer, same messages':<44}{baseline:>12,.0f}")
    print(f"{'ratio (goal >= 50%)':<44}{project / baseline:>12.0%}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offers", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.offers, args.rounds))
