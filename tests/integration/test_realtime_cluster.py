"""Real-time delivery across two gateway processes on the real Kafka, Redis, PostgreSQL and
OpenBao: a price change replayed by a provider and published by its worker reaches WebSocket
and SSE subscribers of the other instance, filtered; an SSE client resuming on another instance
with Last-Event-ID misses nothing; an alert rule fires once across both instances and reaches
its owner's socket and webhook."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gpubroker.core import events
from gpubroker.core.bus.kafka import KafkaBus
from gpubroker.core.plugins import load_providers
from gpubroker.core.testkit.replay import ReplayServer
from tests.conftest import Services
from tests.integration.processes import (
    OPERATOR_KEY,
    gateway_process,
    get_json,
    post_json,
    production_env,
    run_worker,
    seed_credentials,
    wait_for,
)
from tests.integration.test_identity_cluster import api_key

pytestmark = pytest.mark.integration

PRICE_FACTOR = 0.8
"""The repriced scenario: every on-demand offer costs this much of what it did."""


@pytest.fixture
def env(services: Services, tmp_path: Path) -> dict[str, str]:
    return production_env(services, tmp_path)


@pytest.fixture
def replay(services: Services, tmp_path: Path) -> Iterator[ReplayServer]:
    """Vast.ai's recordings plus a ``repriced`` scenario: the same offers, on-demand ones cheaper."""
    provider = load_providers(allow=["vastai"]).get("vastai")
    assert provider.adapter.recordings is not None
    seed_credentials(services, provider)
    recordings = tmp_path / "recordings"
    shutil.copytree(str(provider.adapter.recordings), recordings)
    bundles = json.loads((recordings / "bundles.json").read_text())
    for item in bundles["offers"]:
        for field in ("dph_total", "dph_base"):
            if isinstance(item.get(field), float):
                item[field] *= PRICE_FACTOR
    (recordings / "bundles_repriced.json").write_text(json.dumps(bundles))
    manifest = json.loads((recordings / "manifest.json").read_text())
    repriced = json.loads(json.dumps(manifest["scenarios"]["default"]))
    for exchange in repriced:
        if exchange["response"].get("body_file") == "bundles.json":
            exchange["response"]["body_file"] = "bundles_repriced.json"
    manifest["scenarios"]["repriced"] = repriced
    (recordings / "manifest.json").write_text(json.dumps(manifest))
    with ReplayServer(recordings) as server:
        yield server


def prices(url: str, gpu: str) -> dict[str, float]:
    page = get_json(f"{url}/api/v2/providers?provider=vastai&gpu={gpu}&limit=500")
    return {item["id"]: item["price_per_hour"] for item in page["items"]}


def settled(url: str) -> str | None:
    """The catalogue's fingerprint once it has stayed the same for a second."""
    before = get_json(url + "/health")["catalog"]["fingerprint"]
    time.sleep(1)
    return before if get_json(url + "/health")["catalog"]["fingerprint"] == before else None


class Subscribers:
    """A WebSocket and an SSE client, reading in the background until closed."""

    def __init__(self) -> None:
        self.socket: list[dict[str, Any]] = []
        self.stream: list[dict[str, str]] = []

    async def websocket(self, url: str, channels: list[str], token: str | None = None) -> None:
        query = f"?token={token}" if token else ""
        async with aiohttp.ClientSession() as session, session.ws_connect(url + "/ws/providers/" + query) as ws:
            assert (await ws.receive_json(timeout=10))["type"] == "connection_established"
            await ws.send_json({"type": "subscribe", "channels": channels})
            assert (await ws.receive_json(timeout=10))["type"] == "subscribed"
            self.ready.set()
            async for message in ws:
                self.socket.append(json.loads(message.data))

    async def sse(self, url: str, query: str, last_event_id: str | None = None, stop_after: int = 0) -> None:
        """Reads until ``stop_after`` price updates have come (0: until cancelled)."""
        headers = {"X-API-Key": OPERATOR_KEY, **({"Last-Event-ID": last_event_id} if last_event_id else {})}
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(f"{url}/api/v2/providers/stream?{query}", headers=headers) as answer,
        ):
            assert answer.status == 200
            self.ready.set()
            frame: dict[str, str] = {}
            async for line in answer.content:
                text = line.decode().rstrip("\n")
                if text and not text.startswith(":"):
                    name, _, value = text.partition(": ")
                    frame[name] = value
                elif not text and "data" in frame:
                    self.stream.append(frame)
                    frame = {}
                    if stop_after and len(self.updates()) >= stop_after:
                        return

    def updates(self) -> list[str]:
        """The offers of the price updates the SSE client has read, in order."""
        return [json.loads(f["data"])["offer_id"] for f in self.stream if f.get("event") == "price_update"]

    ready: asyncio.Event


async def until(predicate: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.2)


async def started(coroutine: Any, subscribers: Subscribers) -> asyncio.Task[None]:
    subscribers.ready = asyncio.Event()
    task = asyncio.create_task(coroutine)
    await asyncio.wait_for(subscribers.ready.wait(), 30)
    return task


async def webhook_deliveries(services: Services, webhook_id: int, quiet_s: float) -> list[events.WebhookDelivery]:
    """Every delivery for the webhook on the topic, read until none has come for ``quiet_s``."""
    bus = KafkaBus(services.kafka_bootstrap)
    found: list[events.WebhookDelivery] = []

    async def read() -> None:
        async for record in bus.subscribe([events.WEBHOOKS]):
            delivery = events.WebhookDelivery.decode(record.value or b"")
            if delivery.webhook_id == webhook_id:
                found.append(delivery)

    reader = asyncio.create_task(read())
    seen, deadline = -1, time.monotonic() + 60
    while (seen != len(found) or not found) and time.monotonic() < deadline:
        seen = len(found)
        await asyncio.sleep(quiet_s)
    reader.cancel()
    await bus.stop()
    return found


def test_changes_reach_subscribers_of_the_other_instance_filtered_resumable_and_alerts_fire_once(  # type: ignore[no-untyped-def]
    env, services, replay
) -> None:
    assert run_worker(env, "vastai", replay).returncode == 0
    with gateway_process(env) as first, gateway_process(env) as second:
        for url in (first, second):
            wait_for(lambda url=url: prices(url, "H100"))
            wait_for(lambda url=url: settled(url))
        h100_before, a100_before = prices(first, "H100"), prices(first, "A100")
        median = sorted(h100_before.values())[len(h100_before) // 2]
        threshold = round(median * 0.9, 4)  # the median offer and some around it drop under it
        key = api_key(env, first, "enterprise")
        mine = {"X-API-Key": key}
        alert = post_json(f"{first}/api/v2/alerts", {"filters": {"gpu": ["H100"]}, "price": threshold}, mine)
        hook = post_json(f"{first}/api/v2/webhooks", {"url": "https://93.184.215.14/gpu"}, mine)
        token = post_json(f"{second}/api/v2/auth/service-token", {}, mine)["access_token"]

        async def scenario() -> None:
            h100, a100, alerts, resumed = Subscribers(), Subscribers(), Subscribers(), Subscribers()
            tasks = [
                await started(h100.websocket(second, ["price_updates", "gpu:H100"]), h100),
                await started(a100.websocket(second, ["price_updates", "gpu:A100"]), a100),
                await started(alerts.websocket(second, ["alerts"], token), alerts),
                await started(h100.sse(second, "gpu=H100&provider=vastai", stop_after=1), h100),
            ]
            await asyncio.sleep(6)  # the new rule and webhook are loaded by whichever instance notifies
            replay.scenario = "repriced"
            result = await asyncio.to_thread(run_worker, env, "vastai", replay)
            assert result.returncode == 0, result.stderr

            h100_after = await asyncio.to_thread(lambda: wait_for(lambda: _changed(first, "H100", h100_before)))
            moved = {offer for offer, price in h100_after.items() if price != h100_before.get(offer)}
            crossed = {o for o in moved if h100_before[o] >= threshold > h100_after[o]}
            assert moved and crossed
            await until(lambda: {e["data"]["offer_id"] for e in h100.socket} >= moved)
            await until(lambda: len(a100.socket) >= 1)
            assert all(e["data"]["gpu_type"] == "H100" and e["event"] == "price_update" for e in h100.socket)
            assert all(e["data"]["gpu_type"] == "A100" for e in a100.socket)
            assert {e["data"]["offer_id"] for e in a100.socket} <= set(a100_before)

            # The SSE client read one price update and left; it resumes on the other instance.
            await tasks[3]
            (gone_with,) = h100.updates()
            last_id = h100.stream[-1]["id"]
            resuming = await started(resumed.sse(first, "gpu=H100&provider=vastai", last_id), resumed)
            await until(lambda: set(resumed.updates()) >= moved - {gone_with}, timeout=30)
            resuming.cancel()
            assert gone_with not in resumed.updates() and len(resumed.updates()) == len(moved) - 1

            await until(lambda: {e["data"]["offer_id"] for e in alerts.socket} >= crossed)
            assert all(e["event"] == "alert" and e["data"]["alert_id"] == alert["id"] for e in alerts.socket)
            deliveries = await webhook_deliveries(services, hook["id"], quiet_s=3)
            assert sorted(json.loads(d.body)["data"]["offer_id"] for d in deliveries) == sorted(crossed)  # once each
            for delivery in deliveries:
                stamp, mac = delivery.headers["X-GPUBROKER-Signature"].removeprefix("t=").split(",v1=")
                signed = hmac.new(hook["secret"].encode(), stamp.encode() + b"." + delivery.body, hashlib.sha256)
                assert hmac.compare_digest(mac, signed.hexdigest())
            for task in tasks:
                task.cancel()

        asyncio.run(scenario())


def _changed(url: str, gpu: str, before: dict[str, float]) -> dict[str, float] | None:
    now = prices(url, gpu)
    return now if now != before and settled(url) else None
