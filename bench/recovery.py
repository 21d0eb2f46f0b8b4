"""Recovery: Kafka, Redis, PostgreSQL and OpenBao stopped and started in turn under light load.

Two gateway processes (production mode) on the real services; a provider's worker (vastai,
replayed, a change every half second) publishing through its outbox; clients reading offers,
listing API keys (PostgreSQL), writing integrations (OpenBao) and one Free key sending twice its
limit across both instances. For each dependency: requests by outcome while it was away, seconds
from its return (``scripts/services start`` returned) to the first success on every path that
uses it, records the worker handed over that never reached the topics (must be 0), and the rate
limiter's admitted/limit ratio during the outage.

    scripts/services up && eval "$(scripts/services env)"
    .venv/bin/python bench/recovery.py [--outage-s 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cluster import (
    BIN,
    Gateway,
    api_key,
    missing_services,
    production_environment,
    services,
    topic_ends,
    written_since,
)
from gpubroker.core import events
from gpubroker.core.bus.kafka import KafkaBus
from gpubroker.core.plugins import load_providers
from gpubroker.core.secrets import EnvSecretStore
from gpubroker.core.settings import Settings
from gpubroker.core.testkit.replay import ReplayServer
from gpubroker.workers.worker import ProviderWorker

DEPENDENCIES = ("kafka", "redis", "postgres", "vault")
PATHS = {
    "offers": ("GET", "/api/v2/providers?limit=5"),
    "api-keys (PostgreSQL)": ("GET", "/api/v2/auth/api-keys"),
    "integrations (OpenBao)": ("POST", "/api/v2/providers/config/integrations"),
    "free key (Redis limits)": ("GET", "/api/v2/gpus"),
}
FREE_LIMIT = 10
RATES = {"free key (Redis limits)": 2 * FREE_LIMIT, "integrations (OpenBao)": 2}
"""Requests a second per path (5 where not said): light load, and twice the Free key's limit."""


@dataclass
class Phase:
    dependency: str
    down_at: float = 0.0
    back_at: float = 0.0
    during: dict[str, Counter[int]] = field(default_factory=lambda: {path: Counter() for path in PATHS})
    first_success: dict[str, float] = field(default_factory=dict)


class Load:
    """Clients on every path, alternating between the instances, recording each answer's time."""

    def __init__(self, urls: list[str], keys: dict[str, str]) -> None:
        self.urls = urls
        self.keys = keys
        self.answers: list[tuple[float, str, int]] = []
        self.stopped = False

    async def run(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            await asyncio.gather(*(self._path(session, path, per_second=RATES.get(path, 5)) for path in PATHS))

    async def _path(self, session: aiohttp.ClientSession, path: str, per_second: float) -> None:
        method, target = PATHS[path]
        key = self.keys["free"] if "free" in path else self.keys["enterprise"]
        providers = ("vastai", "runpod", "lambdalabs", "tensordock", "hyperstack")
        sent = 0
        started = time.monotonic()
        pending: set[asyncio.Task[None]] = set()
        while not self.stopped:
            while sent < (time.monotonic() - started) * per_second:
                url = self.urls[sent % len(self.urls)] + target
                body = {"provider": providers[sent % len(providers)], "credentials": {"api_key": f"bench-{sent}"}}
                task = asyncio.create_task(self._one(session, method, url, key, body, path))
                pending.add(task)
                task.add_done_callback(pending.discard)
                sent += 1
            await asyncio.sleep(0.01)
        await asyncio.gather(*pending)

    async def _one(
        self, session: aiohttp.ClientSession, method: str, url: str, key: str, body: object, path: str
    ) -> None:
        try:
            async with session.request(
                method, url, headers={"X-API-Key": key}, json=body if method == "POST" else None
            ) as answer:
                await answer.read()
                status = answer.status
        except (aiohttp.ClientError, TimeoutError):
            status = 0
        self.answers.append((time.monotonic(), path, status))


class Publisher:
    """The vastai worker in this process, its replayed API changing every half second; counts
    what it handed to its outbox."""

    def __init__(self, bootstrap: str, state: Path) -> None:
        self.provider = load_providers(allow=["vastai"]).get("vastai")
        self.bootstrap = bootstrap
        self.state = state
        self.handed: list[tuple[str, str, bytes | None]] = []

    async def run(self, stop_event: asyncio.Event) -> None:
        assert self.provider.adapter.recordings is not None
        bus = KafkaBus(self.bootstrap, request_timeout_ms=3000)
        await bus.start()
        with ReplayServer(self.provider.adapter.recordings) as replay:
            settings = Settings(provider_base_urls={"vastai": replay.url}, kafka_bootstrap=self.bootstrap)
            store = EnvSecretStore({"GPUBROKER_SECRET_VASTAI_API_KEY": "bench-key"})
            async with ProviderWorker(
                self.provider, bus=bus, secrets=store, settings=settings, state_dir=self.state
            ) as worker:
                original = worker.outbox.send

                async def counted(records: list) -> bool:  # type: ignore[type-arg]
                    self.handed += [(topic, key, value) for topic, key, value, _ in records]
                    return await original(records)

                worker.outbox.send = counted  # type: ignore[method-assign]
                delivering = asyncio.create_task(worker.outbox.run(stop_event))
                scenarios = ("default", "empty")
                poll = 0
                while not stop_event.is_set():
                    replay.scenario = scenarios[poll % 2]
                    await worker.poll_once()
                    poll += 1
                    await asyncio.sleep(0.5)
                await delivering
                self.pending_at_end = worker.outbox.pending
        await bus.stop()


def missing(handed: list[tuple[str, str, bytes | None]], found: list[tuple[str, str, bytes | None, int]]) -> int:
    """Records handed over that are not on the topics. The offers topic is compacted (a key's
    older values may already be gone), so there the test is each key's latest value; on the
    others, every record."""
    lost = 0
    for topic in {topic for topic, _, _ in handed}:
        mine = [(key, value) for t, key, value in handed if t == topic]
        theirs = [(key, value) for t, key, value, _ in found if t == topic]
        if topic == events.OFFERS:
            latest_mine, latest_theirs = dict(mine), dict(theirs)
            lost += sum(1 for key, value in latest_mine.items() if latest_theirs.get(key, b"missing") != value)
        else:
            lost += sum((Counter(mine) - Counter(theirs)).values())
    return lost


async def measure(urls: list[str], keys: dict[str, str], bootstrap: str, state: Path, outage_s: float) -> list[Phase]:
    load = Load(urls, keys)
    publisher = Publisher(bootstrap, state)
    stop_event = asyncio.Event()
    starts = await topic_ends(bootstrap, (events.OFFERS, events.PRICE_UPDATES, events.PROVIDER_EVENTS))
    running = [asyncio.create_task(load.run()), asyncio.create_task(publisher.run(stop_event))]
    phases = []
    await asyncio.sleep(5)
    for dependency in DEPENDENCIES:
        phase = Phase(dependency)
        phase.down_at = time.monotonic()
        await asyncio.to_thread(services, "stop", dependency)
        await asyncio.sleep(outage_s)
        await asyncio.to_thread(services, "start", dependency)
        phase.back_at = time.monotonic()
        await asyncio.sleep(15)
        phases.append(phase)
    load.stopped = True
    stop_event.set()
    await asyncio.gather(*running)
    for phase in phases:
        for at, path, status in load.answers:
            if phase.down_at <= at < phase.back_at:
                phase.during[path][status] += 1
            elif at >= phase.back_at and 200 <= status < 300 and path not in phase.first_success:
                phase.first_success[path] = at - phase.back_at
    lost = missing(publisher.handed, await written_since(bootstrap, starts))
    for phase in phases:
        phase.lost = lost  # type: ignore[attr-defined]
    return phases


def report(phases: list[Phase], outage_s: float) -> None:
    print(f"\nrecovery, each dependency stopped for {outage_s:.0f}s under light load, two gateway instances")
    print(f"{'dependency':11} {'path':24} {'during the outage (status: count)':38} {'back after s':>12}")
    for phase in phases:
        for path in PATHS:
            outcomes = ", ".join(f"{status}: {n}" for status, n in sorted(phase.during[path].items())) or "-"
            back = phase.first_success.get(path)
            print(f"{phase.dependency:11} {path:24} {outcomes:38} {'-' if back is None else f'{back:.1f}':>12}")
        if phase.dependency == "redis":
            admitted = phase.during["free key (Redis limits)"][200] / (phase.back_at - phase.down_at)
            print(f"{'':11} rate limiter admitted/limit while Redis was away: {admitted / FREE_LIMIT:.2f}")
    lost = getattr(phases[0], "lost", 0)
    print(f"records handed to the outbox and not on the topics at the end: {lost} (must be 0)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage-s", type=float, default=8.0)
    args = parser.parse_args()
    unset = missing_services()
    if unset:
        sys.exit(f"bench/recovery.py needs the services: {', '.join(unset)} unset (see the docstring)")
    with tempfile.TemporaryDirectory() as scratch, ExitStack() as stack:
        env = production_environment(Path(scratch))
        subprocess.run([BIN / "gpubroker", "migrate"], env=env, check=True)
        gateways = [Gateway(f"gateway-{n}", env, Path(scratch) / f"gateway-{n}.log") for n in range(2)]
        for instance in gateways:
            instance.start()
            stack.callback(instance.stop)
        for instance in gateways:
            instance.wait_ready()
        urls = [instance.url for instance in gateways]
        keys = {plan: api_key(env, urls[0], plan) for plan in ("free", "enterprise")}
        time.sleep(3)  # both instances have said they are live
        state = Path(scratch) / "worker"
        phases = asyncio.run(measure(urls, keys, os.environ["GPUBROKER_KAFKA_BOOTSTRAP"], state, args.outage_s))
    report(phases, args.outage_s)


if __name__ == "__main__":
    main()
