"""The worker runtime's guarantees: circuit breaker, restarts, outbox, health, tracing, shards."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest

from gpubroker.core import events
from gpubroker.core.bus import BusError, Delivery, Headers, Record
from gpubroker.core.bus.memory import MemoryBus
from gpubroker.core.circuit import CircuitState
from gpubroker.core.plugins import RegisteredProvider
from gpubroker.core.secrets import EnvSecretStore
from gpubroker.core.settings import Settings
from gpubroker.core.testkit.replay import Faults, ReplayServer
from gpubroker.workers.health import HealthFile
from gpubroker.workers.poll import RetryPolicy, Shard
from gpubroker.workers.worker import ProviderWorker
from tests.workers.pager import PagerAdapter
from tests.workers.test_worker import drain

PAGER = RegisteredProvider(PagerAdapter, "pager", "test")
SECRETS = EnvSecretStore({"GPUBROKER_SECRET_PAGER_TOKEN": "tok-1"})
ONCE = RetryPolicy(attempts=1)


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


class SwitchableBus(MemoryBus):
    """The in-process bus, with an off switch standing in for a Kafka outage."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    async def publish(self, topic: str, key: str, value: bytes | None, headers: Headers = ()) -> Delivery:
        if not self.down:
            return await super().publish(topic, key, value, headers)
        refused: Delivery = asyncio.get_running_loop().create_future()
        refused.set_exception(BusError("broker unreachable"))
        return refused


def worker(server_url: str, bus: MemoryBus, state: Path, **options: object) -> ProviderWorker:
    settings = Settings(provider_base_urls={"pager": server_url}, snapshot_fallback=False)
    return ProviderWorker(PAGER, bus=bus, secrets=SECRETS, settings=settings, state_dir=state, **options)  # type: ignore[arg-type]


def event_types(records: list[Record]) -> list[str]:
    return [events.ProviderEvent.decode(r.value).event_type for r in records if r.value]


async def test_circuit_opens_within_ten_requests_half_opens_after_30s_and_closes(
    clean_env: pytest.MonkeyPatch, pager_server: ReplayServer, tmp_path: Path
) -> None:
    clock, bus = Clock(), MemoryBus()
    pager_server.faults = Faults(status=503, ratio=0.6)
    async with worker(pager_server.url, bus, tmp_path, retry=ONCE, breaker_options={"clock": clock}) as w:
        while w.guards.breaker.state is CircuitState.CLOSED:
            await w.poll_once()
        assert len(pager_server.requests) <= 10
        sent = len(pager_server.requests)
        outcome = await w.poll_once()
        assert not outcome.ok and "circuit open" in (outcome.error or "")
        assert len(pager_server.requests) == sent  # failing fast: nothing was sent
        clock.now += 30
        assert w.guards.breaker.state is CircuitState.HALF_OPEN
        pager_server.faults = Faults()
        assert (await w.poll_once()).ok
        assert w.guards.breaker.state is CircuitState.CLOSED
    types = event_types(await drain(bus, events.PROVIDER_EVENTS))
    assert [t for t in types if t.startswith("circuit.")] == ["circuit.open", "circuit.half_open", "circuit.closed"]


async def test_a_restart_neither_reannounces_nor_misses_a_removal(
    clean_env: pytest.MonkeyPatch, pager_server: ReplayServer, tmp_path: Path
) -> None:
    bus = MemoryBus()
    async with worker(pager_server.url, bus, tmp_path) as first:
        assert len((await first.poll_once()).changes.upserts) == 3  # type: ignore[union-attr]
    async with worker(pager_server.url, bus, tmp_path) as second:
        again = await second.poll_once()
    assert again.changes is not None and not again.changes and again.changes.unchanged == 3
    pager_server.scenario = "one_removed"  # the provider changed while no worker ran
    async with worker(pager_server.url, bus, tmp_path) as third:
        changed = await third.poll_once()
    assert changed.changes is not None and [o.provider_offer_id for o in changed.changes.removed] == ["a100-8"]


async def test_changes_wait_in_the_outbox_while_the_bus_is_down(
    clean_env: pytest.MonkeyPatch, pager_server: ReplayServer, tmp_path: Path
) -> None:
    bus = SwitchableBus()
    async with worker(pager_server.url, bus, tmp_path) as w:
        bus.down = True
        assert (await w.poll_once()).ok
        assert w.outbox.pending == 4  # three offers and the poll event
        pager_server.scenario = "price_moved"
        assert (await w.poll_once()).ok
        assert w.outbox.pending == 7
        bus.down = False
        assert await w.outbox.drain()
    offers = {r.key: events.decode_offer(r.value) for r in await drain(bus, events.OFFERS) if r.value}
    assert len(offers) == 3 and any(o.price_per_hour == Decimal("0.35") for o in offers.values())
    assert len(await drain(bus, events.PRICE_UPDATES)) == 1


async def test_outbox_survives_a_restart(
    clean_env: pytest.MonkeyPatch, pager_server: ReplayServer, tmp_path: Path
) -> None:
    bus = SwitchableBus()
    bus.down = True
    async with worker(pager_server.url, bus, tmp_path) as w:
        await w.poll_once()
    bus.down = False
    async with worker(pager_server.url, bus, tmp_path) as restarted:
        assert restarted.outbox.pending == 0  # delivered on start-up
    assert len(await drain(bus, events.OFFERS)) == 3


async def test_a_full_outbox_stops_polling(
    clean_env: pytest.MonkeyPatch, pager_server: ReplayServer, tmp_path: Path
) -> None:
    bus = SwitchableBus()
    async with worker(pager_server.url, bus, tmp_path) as w:
        bus.down = True
        await w.poll_once()
        w.outbox._capacity = 1
        requests = len(pager_server.requests)
        stop = asyncio.Event()
        task = asyncio.create_task(w.run(stop))
        await asyncio.sleep(0.3)
        stop.set()
        await task
        assert len(pager_server.requests) == requests  # backed off instead of polling
        bus.down = False


async def test_health_file_reports_failures_with_their_reason(
    clean_env: pytest.MonkeyPatch, pager_server: ReplayServer, tmp_path: Path
) -> None:
    async with worker(pager_server.url, MemoryBus(), tmp_path, retry=ONCE) as w:
        await w.poll_once()
        assert w.health.check()[0]
        pager_server.faults = Faults(status=500)
        await w.poll_once()
        healthy, why = w.health.check()
    assert not healthy and "HTTP 500" in why
    assert HealthFile(tmp_path / "pager.health.json").check(now=10**12)[1].endswith("looks stuck")
    assert not HealthFile(tmp_path / "missing.json").check()[0]


async def test_records_carry_trace_context(
    clean_env: pytest.MonkeyPatch, pager_server: ReplayServer, tmp_path: Path
) -> None:
    bus = MemoryBus()
    async with worker(pager_server.url, bus, tmp_path) as w:
        await w.poll_once()
    records = await drain(bus, events.OFFERS, events.PROVIDER_EVENTS)
    parents = {dict(r.headers).get("traceparent") for r in records}
    assert len(parents) == 1 and None not in parents  # one poll, one trace


async def test_shards_split_the_calls_without_overlap(
    clean_env: pytest.MonkeyPatch, pager_server: ReplayServer, tmp_path: Path
) -> None:
    class Regions(PagerAdapter):
        def calls(self, ctx):  # type: ignore[no-untyped-def]
            from gpubroker.core.adapter import Call

            return [Call("/v1/offers", params={"page": "1", "region": r}, tag=r) for r in ("us", "eu", "ap", "sa")]

    provider = RegisteredProvider(Regions, "pager", "test")
    settings = Settings(provider_base_urls={"pager": pager_server.url})
    sent = []
    for index in range(2):
        async with ProviderWorker(
            provider, bus=MemoryBus(), secrets=SECRETS, settings=settings, state_dir=tmp_path, shard=Shard(index, 2)
        ) as w:
            pager_server.requests.clear()
            await w.poll_once()
            sent.append({r.query.get("region") for r in pager_server.requests if r.query.get("page") == "1"})
    assert sent[0] | sent[1] == {"us", "eu", "ap", "sa"} and not sent[0] & sent[1]
