"""Provider change to subscriber latency: from the worker's poll to a WebSocket client of the
gateway, against the same changes read straight off Kafka, in one run.

    .venv/bin/python bench/change_latency.py [--polls 40] [--subscribers 100]

Needs the real services (``scripts/services up``; the ``GPUBROKER_*`` variables from
``scripts/services env``). A provider worker (the pager test provider under a fresh name,
polling a local replay server whose recorded prices move on every poll) publishes to Kafka;
a gateway process (granian, production settings) consumes, updates its catalogue and pushes
``price_update`` events to ``--subscribers`` WebSocket clients subscribed to that provider.
Each event carries the offer, whose ``last_updated`` is the time the worker's poll began, so
the figure includes the provider fetch itself: an upper bound on "after the worker's fetch".
The baseline is a bare Kafka consumer (aiokafka, no group) reading the same offer records: what
any design that goes through the bus pays before the gateway does anything.
Goal (SRS NFR-P8): p99 at most 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpubroker.core import events
from gpubroker.core.bus.kafka import KafkaBus
from gpubroker.core.plugins import RegisteredProvider
from gpubroker.core.provider import ProviderInfo
from gpubroker.core.secrets import EnvSecretStore
from gpubroker.core.settings import Settings
from gpubroker.core.testkit.replay import ReplayServer
from gpubroker.workers.worker import ProviderWorker
from tests.conftest import Services
from tests.integration.processes import OPERATOR_KEY, gateway_process, get_json, production_env
from tests.workers.pager import PagerAdapter

GOAL_P99_MS = 1000.0
SCENARIOS = ("price_moved", "default")


def services() -> Services:
    try:
        return Services(
            kafka_bootstrap=os.environ["GPUBROKER_KAFKA_BOOTSTRAP"],
            redis_url=os.environ["GPUBROKER_REDIS_URL"],
            database_url=os.environ["GPUBROKER_DATABASE_URL"],
            vault_addr=os.environ["GPUBROKER_VAULT_ADDR"],
            vault_token=os.environ["GPUBROKER_VAULT_TOKEN"],
        )
    except KeyError as missing:
        sys.exit(f'{missing.args[0]} is not set: run `scripts/services up` and `eval "$(scripts/services env)"`')


def fresh_provider() -> RegisteredProvider:
    """The pager provider under a name of its own, so this run's records stand apart."""
    name = f"bench_{uuid.uuid4().hex[:8]}"
    info = ProviderInfo.model_validate({**PagerAdapter.info.model_dump(), "name": name, "rate_limit_per_minute": 6000})
    return RegisteredProvider(type("BenchPager", (PagerAdapter,), {"info": info}), name, "bench")


def latency_ms(offer: dict[str, Any]) -> float:
    return (time.time() - datetime.fromisoformat(offer["last_updated"]).timestamp()) * 1000


async def subscriber(url: str, provider: str, ready: asyncio.Event, samples: list[float]) -> None:
    """One WebSocket client, as the operator (the Admin plan is not rate limited)."""
    endpoint, headers = url.replace("http", "ws") + "/ws/providers/", {"X-API-Key": OPERATOR_KEY}
    async with aiohttp.ClientSession() as session, session.ws_connect(endpoint, headers=headers) as ws:
        await ws.receive_json()
        await ws.send_json({"type": "subscribe", "channels": ["price_updates", f"provider:{provider}"]})
        await ws.receive_json()
        ready.set()
        async for message in ws:
            event = orjson.loads(message.data)
            if event.get("event") == "price_update" and event["data"]["offer"]:
                samples.append(latency_ms(event["data"]["offer"]))


async def kafka_reader(bootstrap: str, provider: str, samples: list[float]) -> None:
    bus = KafkaBus(bootstrap)
    async for record in bus.subscribe([events.OFFERS], from_beginning=False):
        if record.value is not None and b'"provider":"' + provider.encode() + b'"' in record.value:
            samples.append(latency_ms(orjson.loads(record.value)["offer"]))


async def measure(url: str, env: Services, polls: int, subscribers: int, state: Path) -> dict[str, list[float]]:
    provider = fresh_provider()
    name = provider.info.name
    gateway: list[float] = []
    bus_only: list[float] = []
    assert PagerAdapter.recordings is not None
    with ReplayServer(PagerAdapter.recordings) as replay:
        settings = Settings(provider_base_urls={name: replay.url}, kafka_bootstrap=env.kafka_bootstrap)
        store = EnvSecretStore({f"GPUBROKER_SECRET_{name.upper()}_TOKEN": "bench"})
        bus = KafkaBus(env.kafka_bootstrap)
        await bus.start()
        tasks: list[asyncio.Task[None]] = []
        try:
            async with ProviderWorker(provider, bus=bus, secrets=store, settings=settings, state_dir=state) as worker:
                await worker.poll_once()  # the offers arrive; from now on only their prices move
                while name not in {p["name"] for p in get_json(f"{url}/health")["providers"]}:
                    await asyncio.sleep(0.2)
                await asyncio.sleep(1.5)  # the gateway has settled and publishes changes
                for _ in range(subscribers):
                    ready = asyncio.Event()
                    tasks.append(asyncio.create_task(subscriber(url, name, ready, gateway)))
                    await asyncio.wait(
                        [tasks[-1], asyncio.create_task(ready.wait())], timeout=30, return_when="FIRST_COMPLETED"
                    )
                    if tasks[-1].done():
                        tasks[-1].result()  # the connection failed: say why
                tasks.append(asyncio.create_task(kafka_reader(env.kafka_bootstrap, name, bus_only)))
                await asyncio.sleep(2)  # the bare consumer has joined its partitions
                for poll in range(polls):
                    replay.scenario = SCENARIOS[poll % 2]
                    outcome = await worker.poll_once()
                    assert outcome.ok and outcome.changes and outcome.changes.price_updates, "the price did not move"
                    await asyncio.sleep(0.5)
                await asyncio.sleep(2)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await bus.stop()
    return {"gateway → WebSocket": gateway, "Kafka consumer (baseline)": bus_only}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=40, help="polls that move a price (default 40)")
    parser.add_argument("--subscribers", type=int, default=100, help="WebSocket clients (default 100)")
    args = parser.parse_args()
    env = services()
    with tempfile.TemporaryDirectory() as scratch:
        gateway_env = production_env(env, Path(scratch) / "gateway")
        with gateway_process(gateway_env) as url:
            results = asyncio.run(measure(url, env, args.polls, args.subscribers, Path(scratch) / "worker"))
    print(f"\n{args.polls} polls, {args.subscribers} subscribers; latency from the poll's start (ms)")
    print(f"{'path':28} {'samples':>8} {'p50':>8} {'p99':>8} {'max':>8}")
    for path, samples in results.items():
        if not samples:
            sys.exit(f"{path}: no sample arrived")
        p50, p99 = statistics.median(samples), percentile(samples, 0.99)
        print(f"{path:28} {len(samples):>8} {p50:>8.1f} {p99:>8.1f} {max(samples):>8.1f}")
    gateway, baseline = results.values()
    ratio = percentile(gateway, 0.99) / percentile(baseline, 0.99)
    verdict = "met" if percentile(gateway, 0.99) <= GOAL_P99_MS else "MISSED"
    print(f"gateway p99 / Kafka p99 = {ratio:.2f}; goal p99 <= {GOAL_P99_MS:.0f} ms: {verdict}")
    expected = args.polls * args.subscribers
    if len(gateway) < expected:
        print(f"warning: {expected - len(gateway)} of {expected} expected deliveries did not arrive")


if __name__ == "__main__":
    main()
