"""The gateway's ASGI application with a synthetic catalogue, for HTTP benchmarks.

A freshly started embedded gateway has no offers until its workers poll real providers, which
a benchmark can neither wait for nor reproduce. This wraps ``GatewayApplication`` exactly as
production builds it (``run_workers=False``) and, once its lifespan startup has completed,
publishes ``BENCH_OFFERS`` synthetic offers (default 5000) and one ``poll.succeeded`` event per
provider on the runtime's own bus, all dated ``BENCH_NOW`` (ISO 8601; default: now). It waits
until the ingest task has put all of them in the catalogue and written them to the database,
and only then reports startup complete, so the server answers only once the catalogue is full.
Every other request goes straight to the gateway (one extra coroutine call);
``GET /_bench/stats`` reports the catalogue size and the fast path's hit count, so a benchmark
can check what it measured. ``POST /_bench/reprice`` publishes a new price for one offer (the
next in id order, round the catalogue) on the runtime's bus, so the change takes the real path
to subscribers (ingest, catalogue, hub, each WebSocket consumer); it answers the offer's id, the
new price and ``published_at`` (``time.time()`` just before publishing), or 503 until the
runtime publishes changes to subscribers. ``GET /_bench/reprice`` tells whether it does yet
(``live``) and how many subscriptions the hub holds. ``bench/fanout.py`` uses both.

The offers are the same on every run, so processes started with the same ``BENCH_NOW`` and
``GPUBROKER_SECRET_KEY`` (which signs cursors) answer with the same bytes. The providers poll
hourly, so the data stays fresh and a re-render after the cache TTL gives the same bytes again.

    granian --interface asgi bench.seeded_gateway:app
    uvicorn bench.seeded_gateway:app

Run it with ``PYTHONPATH`` set to the repository and embedded settings (``GPUBROKER_DATA_DIR``
with migrated tables, no Kafka, Redis, database or Vault); ``bench/cached_get.py`` does.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import MutableMapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from gpubroker.core import events
from gpubroker.core.gpus import resolve
from gpubroker.core.offer import Availability, Offer, offer_id
from gpubroker.gateway.app import GatewayApplication, Receive, Scope, Send
from gpubroker.gateway.runtime import GatewayRuntime

STATS_PATH = "/_bench/stats"
REPRICE_PATH = "/_bench/reprice"
PRICE_STEP = Decimal("0.0100")  # every reprice moves the offer's price by a cent: always a price_update
PROVIDERS = [
    "aws",
    "gcp",
    "azure",
    "lambda",
    "runpod",
    "vast",
    "coreweave",
    "paperspace",
    "tensordock",
    "fluidstack",
]
REGIONS = {"us-east": "US", "us-west": "US", "eu-central": "DE", "eu-west": "IE", "ap-southeast": "SG", "ca-east": "CA"}
GPU_PRICES = {  # USD per GPU-hour, roughly what the market asks
    "H100 SXM5 80GB": 2.5,
    "A100-SXM4-80GB": 1.4,
    "RTX 4090": 0.45,
    "L40S": 0.9,
    "H200": 3.5,
    "MI300X": 2.8,
    "L4": 0.5,
    "RTX A6000": 0.7,
}
COUNTS = (1, 2, 4, 8)
POLL_INTERVAL_S = 3600
AVAILABILITY = (Availability.AVAILABLE, Availability.AVAILABLE, Availability.LIMITED, Availability.UNAVAILABLE)


def synthetic_offers(count: int, now: datetime, seed: int = 7) -> list[Offer]:
    """``count`` distinct offers spread over providers, GPUs, regions and sizes (deterministic)."""
    rng = random.Random(seed)
    gpus = list(GPU_PRICES)
    regions = list(REGIONS)
    offers = []
    for i in range(count):
        provider = PROVIDERS[i % len(PROVIDERS)]
        gpu = gpus[(i // len(PROVIDERS)) % len(gpus)]
        gpu_count = COUNTS[rng.randrange(len(COUNTS))]
        region = regions[rng.randrange(len(regions))]
        match = resolve(gpu)
        price = Decimal(str(round(GPU_PRICES[gpu] * gpu_count * rng.uniform(0.7, 1.5), 4)))
        sku = f"{provider}-{i}"
        offers.append(
            Offer(
                id=offer_id(provider, sku),
                provider=provider,
                provider_offer_id=sku,
                name=f"{gpu_count}x {gpu}",
                gpu_name=gpu,
                gpu_type=match.gpu_type,
                gpu_vendor=match.vendor,
                gpu_count=gpu_count,
                gpu_memory_gb=match.memory_gb,
                vcpus=float(gpu_count * rng.choice((8, 12, 16, 26))),
                ram_gb=float(gpu_count * rng.choice((32, 64, 120, 240))),
                storage_gb=float(gpu_count * rng.choice((100, 500, 1000))),
                cpu_arch="x86_64",
                price_per_hour=price,
                spot=rng.random() < 0.15,
                availability_status=AVAILABILITY[rng.randrange(len(AVAILABILITY))],
                region=region,
                country=REGIONS[region],
                last_updated=now,
            )
        )
    return offers


async def seed(runtime: GatewayRuntime, count: int, now: datetime) -> None:
    """Publish the offers and provider events and wait until the catalogue holds them all."""
    offers = synthetic_offers(count, now)
    for offer in offers:
        await runtime.bus.publish(events.OFFERS, offer.id, events.encode_offer(offer))
    for provider in PROVIDERS:
        data = {
            "source": "live",
            "data_as_of": now.isoformat(),
            "offers": count // len(PROVIDERS),
            "poll_interval_s": POLL_INTERVAL_S,
        }
        event = events.ProviderEvent(provider, "poll.succeeded", now, data)
        await runtime.bus.publish(events.PROVIDER_EVENTS, provider, event.encode())
    await runtime.bus.flush()
    while len(runtime.catalog.offers) < count or len(runtime.catalog.providers) < len(PROVIDERS):
        await asyncio.sleep(0.01)
    await runtime.ingest.flush()  # the price history and provider status, before any request


class SeededGateway:
    def __init__(self, offers: int, now: datetime) -> None:
        self.offers = offers
        self.now = now
        self.gateway = GatewayApplication(run_workers=False)
        self.repriced = 0
        self._reprice_ids: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.gateway(scope, receive, self._seed_before_startup_complete(send))
        elif scope.get("path") == STATS_PATH:
            await self._stats(send)
        elif scope.get("path") == REPRICE_PATH and scope["type"] == "http":
            await self._reprice(scope, send)
        else:
            await self.gateway(scope, receive, send)

    def _seed_before_startup_complete(self, send: Send) -> Send:
        async def forward(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "lifespan.startup.complete":
                await seed(self.gateway.runtime, self.offers, self.now)
            await send(message)

        return forward

    async def _stats(self, send: Send) -> None:
        runtime = self.gateway.runtime
        body = orjson.dumps(
            {
                "offers": 0 if runtime is None else len(runtime.catalog.offers),
                "fastpath_hits": 0 if runtime is None else runtime.fastpath.hits,
            }
        )
        await _answer(send, 200, body)

    async def _reprice(self, scope: Scope, send: Send) -> None:
        """One offer's price moves by a cent, published on the bus as a worker would."""
        runtime = self.gateway.runtime
        live = runtime is not None and runtime.changes.live and bool(runtime.catalog.offers)
        if scope["method"] != "POST":
            state = {"live": live, "subscribers": 0 if runtime is None else runtime.hub.subscribers}
            await _answer(send, 200, orjson.dumps({**state, "repriced": self.repriced}))
            return
        if not live:
            await _answer(send, 503, b'{"detail": "the runtime does not publish changes yet"}')
            return
        if not self._reprice_ids:
            self._reprice_ids = sorted(runtime.catalog.offers)
        offer = runtime.catalog.offers[self._reprice_ids[self.repriced % len(self._reprice_ids)]]
        up = (self.repriced // len(self._reprice_ids)) % 2 == 0  # up on one round, back down on the next
        price = (offer.price_per_hour or Decimal(1)) + (PRICE_STEP if up else -PRICE_STEP)
        changed = offer.model_copy(update={"price_per_hour": price, "last_updated": datetime.now(UTC)})
        self.repriced += 1
        published_at = time.time()
        await runtime.bus.publish(events.OFFERS, changed.id, events.encode_offer(changed))
        body = {"offer_id": changed.id, "price_per_hour": float(price), "published_at": published_at}
        await _answer(send, 200, orjson.dumps(body))


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _now() -> datetime:
    value = os.environ.get("BENCH_NOW")
    return datetime.fromisoformat(value) if value else datetime.now(UTC)


app = SeededGateway(int(os.environ.get("BENCH_OFFERS", "5000")), _now())
