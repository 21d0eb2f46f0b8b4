"""Recovering in seconds, on the real services: each dependency stopped and started in turn under
light load, and what a user sees meanwhile and after."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from gpubroker.core import events
from gpubroker.core.bus.kafka import KafkaBus
from gpubroker.core.provider import ProviderInfo
from gpubroker.core.secrets import EnvSecretStore
from gpubroker.core.settings import Settings
from gpubroker.core.testkit.replay import ReplayServer
from gpubroker.workers.worker import ProviderWorker
from tests.conftest import Services
from tests.integration.kafka_reading import end_offsets, read_since
from tests.integration.processes import gateway_process, production_env, services_cmd, wait_for
from tests.integration.test_database_connections import connections
from tests.integration.test_identity_cluster import api_key
from tests.integration.test_worker_resilience import unique_provider
from tests.workers.pager import PagerAdapter

pytestmark = pytest.mark.integration


# --- Kafka: the outbox drains on its own --------------------------------------------------------


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    assert PagerAdapter.recordings is not None
    with ReplayServer(PagerAdapter.recordings) as replay:
        yield replay


async def test_a_worker_polled_hourly_delivers_what_waited_within_seconds_of_kafka_returning(
    services: Services,
    server: ReplayServer,
    tmp_path: Path,
) -> None:
    provider = unique_provider()
    name = provider.info.name
    hourly = ProviderInfo.model_validate({**provider.info.model_dump(), "poll_interval_s": 3600})
    provider = type(provider)(type("Hourly", (provider.adapter,), {"info": hourly}), name, "test")
    settings = Settings(provider_base_urls={name: server.url}, kafka_bootstrap=services.kafka_bootstrap)
    topics = (events.OFFERS, events.PROVIDER_EVENTS)
    starts = {topic: await end_offsets(services.kafka_bootstrap, topic) for topic in topics}
    bus = KafkaBus(services.kafka_bootstrap)
    await bus.start()
    store = EnvSecretStore({f"GPUBROKER_SECRET_{name.upper()}_TOKEN": "t-123456"})
    stop = asyncio.Event()
    try:
        async with ProviderWorker(provider, bus=bus, secrets=store, settings=settings, state_dir=tmp_path) as worker:
            await asyncio.to_thread(services_cmd, "stop", "kafka")
            running = asyncio.create_task(worker.run(stop))  # polls at once, then not for an hour
            await asyncio.sleep(1)
            assert worker.outbox.pending > 0, "the poll's records wait for the bus"
            waited = worker.outbox.pending
            polls = len(server.requests)
            await asyncio.to_thread(services_cmd, "start", "kafka")
            returned = time.monotonic()
            while worker.outbox.pending and time.monotonic() - returned < 10:
                await asyncio.sleep(0.1)
            took = time.monotonic() - returned
            assert worker.outbox.pending == 0, f"{worker.outbox.pending} of {waited} still waiting after {took:.1f}s"
            assert len(server.requests) == polls, "delivered without polling again"
            stop.set()
            await running
    finally:
        await bus.stop()
    landed = {topic: await read_since(services.kafka_bootstrap, starts[topic]) for topic in topics}
    offers = Counter(key for key, value in landed[events.OFFERS] if name in value.decode())
    provider_events = [value for key, value in landed[events.PROVIDER_EVENTS] if key == name]
    assert offers and all(count == 1 for count in offers.values()), f"each offer once: {offers}"
    assert len(provider_events) == 1, "the poll's event went out once, the shutdown sent nothing again"
    assert sum(offers.values()) + len(provider_events) == waited


# --- Redis: limits hold across instances while it is away ---------------------------------------


async def offered(urls: tuple[str, str], key: str, per_second: float, seconds: float) -> Counter[int]:
    """Send at ``per_second``, alternating between the instances; count the answers by status."""
    outcomes: Counter[int] = Counter()
    async with aiohttp.ClientSession(headers={"X-API-Key": key}) as session:

        async def one(url: str) -> None:
            try:
                async with session.get(url + "/api/v2/gpus") as answer:
                    await answer.read()
                    outcomes[answer.status] += 1
            except aiohttp.ClientError:
                outcomes[0] += 1

        started, sent, pending = time.monotonic(), 0, []
        while time.monotonic() - started < seconds:
            while sent < (time.monotonic() - started) * per_second:
                pending.append(asyncio.create_task(one(urls[sent % 2])))
                sent += 1
            await asyncio.sleep(0.005)
        await asyncio.gather(*pending)
    return outcomes


def test_a_free_key_over_two_instances_keeps_its_limit_while_redis_is_away(services: Services, tmp_path: Path) -> None:
    env = production_env(services, tmp_path)
    with gateway_process(env) as first, gateway_process(env) as second:
        key = api_key(env, first, "free")
        time.sleep(3)  # both instances have recorded their presence
        services_cmd("stop", "redis")
        try:
            during = asyncio.run(offered((first, second), key, per_second=40, seconds=6))
        finally:
            services_cmd("start", "redis")
        back = time.monotonic()
        wait_for(lambda: health(first)["cache"]["redis"] and health(second)["cache"]["redis"], timeout=10)
        reused = time.monotonic() - back
    admitted = during[200] / 6
    assert admitted <= 10 * 1.1, f"{admitted:.1f}/s admitted against a limit of 10/s: {dict(during)}"
    assert admitted >= 10 * 0.7 and not during[0] and set(during) <= {200, 429}
    assert reused <= 3, f"Redis used again {reused:.1f}s after it returned"


def health(url: str) -> dict:  # type: ignore[type-arg]
    import json

    with urllib.request.urlopen(url + "/health", timeout=5) as answer:
        return json.loads(answer.read())  # type: ignore[no-any-return]


# --- PostgreSQL: 503 with Retry-After, then back within seconds ----------------------------------


def status_of(url: str, key: str) -> tuple[int, str | None]:
    request = urllib.request.Request(url + "/api/v2/auth/api-keys", headers={"X-API-Key": key})
    try:
        with urllib.request.urlopen(request, timeout=15) as answer:
            return answer.status, None
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Retry-After")


def test_routes_that_need_postgres_answer_503_while_it_is_away_and_recover_in_seconds(
    services: Services, tmp_path: Path
) -> None:
    pool = 4
    env = {**production_env(services, tmp_path), "GPUBROKER_DATABASE_POOL_SIZE": str(pool)}
    with gateway_process(env) as url:
        key = api_key(env, url, "admin")
        assert status_of(url, key)[0] == 200
        services_cmd("stop", "postgres")
        try:
            started = time.monotonic()
            status, retry_after = status_of(url, "gpb_a-key-this-instance-has-not-seen")
            assert status == 503 and retry_after and int(retry_after) >= 1
            assert time.monotonic() - started < 10, "answered within the database timeout, not hung"
            listing = urllib.request.urlopen(
                urllib.request.Request(
                    url + "/api/v2/providers", headers={"X-API-Key": env["GPUBROKER_ADMIN_API_KEY"]}
                ),
                timeout=10,
            )
            assert listing.status == 200, "offers are read without the database"
        finally:
            services_cmd("start", "postgres")
        back = time.monotonic()
        wait_for(lambda: status_of(url, key)[0] == 200, timeout=15)
        assert time.monotonic() - back <= 3, f"back {time.monotonic() - back:.1f}s after PostgreSQL returned"
        assert connections(services.database_url, urlsplit(url).port or 80) <= pool
