"""Webhook delivery: alert to POST received, and the deliveries per second one delivery task
sustains against a plain aiohttp loop POSTing the same requests, in one run.

    .venv/bin/python bench/webhook_delivery.py [--alerts 100] [--deliveries 2000] [--rounds 3]

Needs the real services (``scripts/services up``; the ``GPUBROKER_*`` variables from
``scripts/services env``). A gateway process (granian, on the real Kafka, Redis, PostgreSQL and
OpenBao) holds an Enterprise user's alert rule and webhooks; the delivery loop is the code the
``webhook_delivery`` DAG's task runs (``dags/gpubroker_dags/delivery.py``), run here in the
benchmark's process (under Airflow the same loop runs inside the continuous DAG's one task,
whose start-up is paid once per ten minutes, not per delivery). The receiver is an aiohttp
server on 127.0.0.2 answering 200.

1. Latency: ``--alerts`` offers each get a price update that crosses the rule, one every 100 ms;
   the time from publishing the update to the receiver getting the signed POST (the notifier,
   Kafka twice, the gateway's record, the target check and the POST). Goal: p99 at most 5 s.
2. Throughput: the notifier first makes ``--deliveries`` deliveries (``price.change``) onto the
   topic; then the delivery loop, in a new consumer group, sends them all (register, check,
   POST, report, commit, with the same 32 connections); the baseline POSTs the same requests
   (URL, body, headers) from a plain aiohttp loop with 32 at a time. Each round runs both, the
   medians are compared (the machines are shared and noisy). Goal: at least 50% of it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "dags")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gpubroker.gateway.settings")  # the tests' helpers import it

import django  # noqa: E402

django.setup(set_prefix=False)

from bench.cluster import group_at  # noqa: E402
from gpubroker.core import events  # noqa: E402
from gpubroker.core.bus.kafka import KafkaBus  # noqa: E402
from gpubroker_dags.delivery import DeliveryService, Options  # noqa: E402
from gpubroker_dags.gateway import Gateway  # noqa: E402
from tests.conftest import Services  # noqa: E402
from tests.dags.conftest import gateway_env, service_token  # noqa: E402
from tests.dags.receiver import Receiver  # noqa: E402
from tests.gateway.conftest import offer  # noqa: E402
from tests.integration.processes import BIN, gateway_process, get_json, post_json  # noqa: E402

GOAL_P99_S = 5.0
GOAL_RATIO = 0.5
CONCURRENCY = 32
PASSWORD = "benchmark password, long enough"


def services() -> Services:
    names = ("KAFKA_BOOTSTRAP", "REDIS_URL", "DATABASE_URL", "VAULT_ADDR", "VAULT_TOKEN")
    try:
        return Services(*(os.environ[f"GPUBROKER_{name}"] for name in names))
    except KeyError as exc:
        sys.exit(f'needs the real services: {exc.args[0]} is unset (eval "$(scripts/services env)")')


async def publish(bus: KafkaBus, records: list[tuple[str, str, bytes]]) -> None:
    for topic, key, value in records:
        await bus.publish(topic, key, value)
    await bus.flush()


def update(item: Any, old: str, new: str) -> bytes:
    now = datetime.now(UTC)
    return events.PriceUpdate(
        item.provider, item.id, item.gpu_type, item.region, Decimal(old), Decimal(new), now
    ).encode()


async def webhook_partitions(bootstrap: str) -> list[TopicPartition]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        return [TopicPartition(events.WEBHOOKS, p) for p in sorted(await producer.partitions_for(events.WEBHOOKS))]
    finally:
        await producer.stop()


async def end_offsets(bootstrap: str) -> dict[TopicPartition, int]:
    partitions = await webhook_partitions(bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        return await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()


async def deliver_for(gateway_url: str, token: str, options: Options, seconds: float) -> DeliveryService:
    async with Gateway(gateway_url, token, wait_s=30) as gateway:
        service = DeliveryService(gateway, options)
        await service.run(seconds)
    return service


async def latency(svc: Services, url: str, token: str, user: str, receiver: Receiver, alerts: int) -> list[float]:
    headers = {"Authorization": f"Bearer {user}", "X-API-Key": ""}
    post_json(f"{url}/api/v2/webhooks", {"url": receiver.url("/alerts"), "events": ["price.alert"]}, headers)
    items = [offer("vastai", f"bench-{uuid.uuid4().hex[:10]}", "H100", "3") for _ in range(alerts)]
    bus = KafkaBus(svc.kafka_bootstrap)
    await bus.start()
    await publish(bus, [(events.OFFERS, item.id, events.encode_offer(item)) for item in items])
    while get_json(f"{url}/api/v2/providers?provider=vastai&limit=500")["total"] < alerts:
        await asyncio.sleep(0.5)
    rule = {"filters": {"provider": ["vastai"], "gpu": ["H100"]}, "direction": "below", "price": "2.00"}
    post_json(f"{url}/api/v2/alerts", rule, headers)
    await asyncio.sleep(6)  # the notifier re-reads the rules
    group = f"bench-latency-{uuid.uuid4().hex[:8]}"
    await group_at(svc.kafka_bootstrap, group, await end_offsets(svc.kafka_bootstrap))
    options = Options(svc.kafka_bootstrap, allowed=[_loopback()], concurrency=CONCURRENCY, group=group)
    delivering = asyncio.create_task(deliver_for(url, token, options, alerts * 0.1 + 20))
    await asyncio.sleep(3)  # the consumer has joined its group
    sent_at: dict[str, float] = {}
    for item in items:
        sent_at[item.id] = time.time()
        await publish(bus, [(events.PRICE_UPDATES, item.provider, update(item, "3", "1.5"))])
        await asyncio.sleep(0.1)
    await delivering
    await bus.stop()
    got = {}
    for received in receiver.at("/alerts"):
        offer_id = orjson.loads(received.body)["data"]["offer_id"]
        got.setdefault(offer_id, received.at - sent_at[offer_id])
    if len(got) < alerts:
        print(f"only {len(got)} of {alerts} alerts arrived", file=sys.stderr)
    return sorted(got.values())


async def throughput(
    svc: Services, url: str, token: str, user: str, receiver: Receiver, count: int
) -> tuple[float, float]:
    headers = {"Authorization": f"Bearer {user}", "X-API-Key": ""}
    hook = post_json(f"{url}/api/v2/webhooks", {"url": receiver.url("/changes"), "events": ["price.change"]}, headers)
    await asyncio.sleep(6)  # the notifier re-reads the webhooks
    start = await end_offsets(svc.kafka_bootstrap)
    bus = KafkaBus(svc.kafka_bootstrap)
    await bus.start()
    items = [offer("vastai", f"bench-{uuid.uuid4().hex[:10]}", "H100", "3") for _ in range(count)]
    await publish(bus, [(events.PRICE_UPDATES, item.provider, update(item, "3", "2.5")) for item in items])
    await bus.stop()
    deliveries = await _made(svc.kafka_bootstrap, start, count)
    group = f"bench-throughput-{uuid.uuid4().hex[:8]}"
    await group_at(svc.kafka_bootstrap, group, start)
    options = Options(svc.kafka_bootstrap, allowed=[_loopback()], concurrency=CONCURRENCY, group=group)
    before = len(receiver.at("/changes"))
    started = time.perf_counter()
    task = asyncio.create_task(deliver_for(url, token, options, 600))
    while len(receiver.at("/changes")) - before < count:
        await asyncio.sleep(0.02)
        if task.done():
            task.result()  # it failed: say why rather than report a figure
            sys.exit("the delivery loop ended before delivering everything")
    ours = time.perf_counter() - started
    task.cancel()
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        semaphore = asyncio.Semaphore(CONCURRENCY)

        async def post(delivery: events.WebhookDelivery) -> None:
            async with (
                semaphore,
                session.post(receiver.url("/baseline"), data=delivery.body, headers=delivery.headers) as answer,
            ):
                await answer.read()

        started = time.perf_counter()
        await asyncio.gather(*(post(delivery) for delivery in deliveries))
        baseline = time.perf_counter() - started
    removal = urllib.request.Request(f"{url}/api/v2/webhooks/{hook['id']}", method="DELETE", headers=headers)
    urllib.request.urlopen(removal, timeout=10).close()  # the next round's deliveries go to its own webhook
    return count / ours, count / baseline


async def _made(bootstrap: str, start: dict[TopicPartition, int], count: int) -> list[events.WebhookDelivery]:
    """Wait for the notifier to put ``count`` deliveries on the topic; returns them."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    made: list[events.WebhookDelivery] = []
    try:
        consumer.assign(list(start))
        for partition, offset in start.items():
            consumer.seek(partition, offset)
        deadline = time.monotonic() + 300
        while len(made) < count and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for record in records:
                    delivery = events.WebhookDelivery.decode(record.value)
                    if delivery.event == "price.change":
                        made.append(delivery)
    finally:
        await consumer.stop()
    return made[:count]


def _loopback() -> Any:
    import ipaddress

    return ipaddress.ip_network("127.0.0.2/32")


def percentile(values: list[float], share: float) -> float:
    return values[min(len(values) - 1, int(share * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=100)
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds, each variant once a round")
    args = parser.parse_args()
    svc = services()
    env = gateway_env(svc, Path(tempfile.mkdtemp(prefix="bench-webhooks-")))
    subprocess.run([BIN / "gpubroker", "migrate"], env=env, check=True, timeout=120)
    email = f"bench-{secrets.token_hex(4)}@example.com"
    subprocess.run([BIN / "gpubroker", "users", "create", email, "--plan", "enterprise"],
                   input=PASSWORD + "\n", env=env, text=True, check=True, capture_output=True)  # fmt: skip
    token = service_token(env)
    with Receiver() as receiver, gateway_process(env) as url:
        user = post_json(f"{url}/api/v2/auth/login", {"email": email, "password": PASSWORD})["access_token"]
        waits = asyncio.run(latency(svc, url, token, user, receiver, args.alerts))
        rounds = [asyncio.run(throughput(svc, url, token, user, receiver, args.deliveries)) for _ in range(args.rounds)]
    ours, baseline = statistics.median(r[0] for r in rounds), statistics.median(r[1] for r in rounds)
    p50, p99 = statistics.median(waits), percentile(waits, 0.99)
    print(
        f"alert -> webhook POST received, {len(waits)} alerts: "
        f"p50 {p50:.3f} s, p99 {p99:.3f} s (goal p99 <= {GOAL_P99_S:g} s)"
    )
    print()
    each = ", ".join(f"{a:,.0f}/{b:,.0f}" for a, b in rounds)
    print(f"| variant | deliveries/s, median of {args.rounds} rounds ({each}) |")
    print("|---|---|")
    print(f"| delivery task (register, check, POST, report, commit) | {ours:,.0f} |")
    print(f"| plain aiohttp loop, same requests | {baseline:,.0f} |")
    print(f"| ratio | {ours / baseline:.0%} (goal >= {GOAL_RATIO:.0%}) |")


if __name__ == "__main__":
    main()
