"""Handing one change to N WebSocket consumers of an instance: the gateway's hub against Django
Channels' Redis channel layers, in one run.

    .venv/bin/python bench/channel_layer.py [--subscribers 1000,5000,10000] [--events 10]

Needs Redis (``scripts/services up redis``; ``GPUBROKER_REDIS_URL`` from ``scripts/services
env``). This is the measurement behind fanning out with a bus consumer per instance instead of
a channel layer. Each consumer here is what a connection's consumer does, without the socket:

- hub: the instance's bus consumer publishes the event to the in-process hub, which queues it
  for every matching subscription and wakes its sender task;
- Redis pub/sub layer (``channels_redis.pubsub``): every consumer's channel is in one group and
  ``group_send`` goes through Redis, whose subscriber hands it to each channel's ``receive``;
- Redis layer (``channels_redis.core``, Channels' default): the same with its list-based layer.

For each event: the time from publishing until each consumer has it; reported as p50 and p99
over all (event, consumer) pairs and the time until the last consumer had it. Events are sent
one at a time, the next once every consumer has the previous one. The process runs as the
gateway's does: uvloop, and the gateway's collector thresholds.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import uvloop

from gpubroker.gateway.app import GC_THRESHOLDS
from gpubroker.gateway.realtime.hub import Event, Hub

GROUP = "bench"
Deliver = Callable[[float], Awaitable[None]]


async def run_events(
    subscribers: int, events: int, publish: Deliver, arrivals: asyncio.Queue[float]
) -> tuple[list[float], list[float]]:
    each: list[float] = []
    last: list[float] = []
    for _ in range(events):
        sent = time.perf_counter()
        await publish(sent)
        got = [await asyncio.wait_for(arrivals.get(), 60) - sent for _ in range(subscribers)]
        each += got
        last.append(max(got))
        await asyncio.sleep(0.05)
    return each, last


async def hub_fanout(subscribers: int, events: int) -> tuple[list[float], list[float]]:
    hub = Hub()
    arrivals: asyncio.Queue[float] = asyncio.Queue()

    async def consumer() -> None:
        subscription = hub.subscribe(lambda event: event.kind == "price_update")
        while True:
            batch, _ = await subscription.next_batch()
            for _event in batch:
                arrivals.put_nowait(time.perf_counter())

    tasks = [asyncio.create_task(consumer()) for _ in range(subscribers)]
    await asyncio.sleep(0.1)
    offset = iter(range(1_000_000))

    async def publish(sent: float) -> None:
        at = next(offset)
        hub.publish(Event("price_update", b'{"price":1}', "o0", at, hub.next_id("o0", at), "bench"))

    try:
        return await run_events(subscribers, events, publish, arrivals)
    finally:
        for task in tasks:
            task.cancel()


async def layer_fanout(layer: object, subscribers: int, events: int) -> tuple[list[float], list[float]]:
    arrivals: asyncio.Queue[float] = asyncio.Queue()
    channels = [await layer.new_channel() for _ in range(subscribers)]  # type: ignore[attr-defined]
    for channel in channels:
        await layer.group_add(GROUP, channel)  # type: ignore[attr-defined]

    async def consumer(channel: str) -> None:
        while True:
            await layer.receive(channel)  # type: ignore[attr-defined]
            arrivals.put_nowait(time.perf_counter())

    tasks = [asyncio.create_task(consumer(channel)) for channel in channels]
    await asyncio.sleep(0.5)

    async def publish(sent: float) -> None:
        await layer.group_send(GROUP, {"type": "price.update", "data": '{"price":1}'})  # type: ignore[attr-defined]

    try:
        return await run_events(subscribers, events, publish, arrivals)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for channel in channels:
            await layer.group_discard(GROUP, channel)  # type: ignore[attr-defined]
        flush = getattr(layer, "flush", None)
        if flush is not None:
            await flush()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def main(sizes: list[int], events: int, redis_url: str) -> None:
    from channels_redis.core import RedisChannelLayer
    from channels_redis.pubsub import RedisPubSubChannelLayer

    print(f"{'fan-out':24} {'consumers':>9} {'p50 ms':>8} {'p99 ms':>8} {'last ms':>8}")
    for size in sizes:
        paths: dict[str, Callable[[], Awaitable[tuple[list[float], list[float]]]]] = {
            "hub (chosen)": lambda size=size: hub_fanout(size, events),
            "Redis pub/sub layer": lambda size=size: layer_fanout(
                RedisPubSubChannelLayer(hosts=[redis_url]), size, events
            ),
            "Redis layer (default)": lambda size=size: layer_fanout(
                RedisChannelLayer(hosts=[redis_url], capacity=10, group_expiry=600), size, events
            ),
        }
        for name, run in paths.items():
            try:
                each, last = await run()
            except TimeoutError:
                print(f"{name:24} {size:>9} {'lost events (a consumer waited over 60 s)':>26}")
                continue
            ms = [value * 1000 for value in each]
            print(
                f"{name:24} {size:>9} {statistics.median(ms):>8.2f} {percentile(ms, 0.99):>8.2f} "
                f"{statistics.median(last) * 1000:>8.2f}"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", default="1000,5000,10000", help="consumer counts (default 1000,5000,10000)")
    parser.add_argument("--events", type=int, default=10, help="events per count (default 10)")
    args = parser.parse_args()
    url = os.environ.get("GPUBROKER_REDIS_URL")
    if not url:
        sys.exit("GPUBROKER_REDIS_URL is not set: see `scripts/services up redis` and `scripts/services env`")
    gc.set_threshold(*GC_THRESHOLDS)
    uvloop.run(main([int(size) for size in args.subscribers.split(",")], args.events, url))
