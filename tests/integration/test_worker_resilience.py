"""The worker on the real Kafka and OpenBao: an outage of either loses nothing and leaks nothing."""

from __future__ import annotations

import asyncio
import logging
import secrets
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import hvac
import pytest

from gpubroker.core import events
from gpubroker.core.bus.kafka import KafkaBus
from gpubroker.core.bus.memory import MemoryBus
from gpubroker.core.plugins import RegisteredProvider
from gpubroker.core.provider import ProviderInfo
from gpubroker.core.secrets import EnvSecretStore, VaultSecretStore
from gpubroker.core.settings import Settings
from gpubroker.core.testkit.replay import ReplayServer
from gpubroker.workers.poll import RetryPolicy
from gpubroker.workers.worker import ProviderWorker
from tests.conftest import Services
from tests.workers.pager import PagerAdapter
from tests.workers.test_worker import drain

pytestmark = pytest.mark.integration

SERVICES = Path(__file__).resolve().parents[2] / "scripts" / "services"


def unique_provider() -> RegisteredProvider:
    """A pager provider under a fresh name, so this run's records are told apart on shared topics."""
    name = f"pager_{uuid.uuid4().hex[:8]}"
    info = ProviderInfo.model_validate({**PagerAdapter.info.model_dump(), "name": name, "rate_limit_per_minute": 600})
    return RegisteredProvider(type("UniquePager", (PagerAdapter,), {"info": info}), name, "test")


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    assert PagerAdapter.recordings is not None
    with ReplayServer(PagerAdapter.recordings) as replay:
        yield replay


def services_cmd(*args: str) -> None:
    subprocess.run([SERVICES, *args], check=True, timeout=180, capture_output=True)


async def test_kafka_restart_while_publishing_loses_no_change(
    services: Services, server: ReplayServer, tmp_path: Path
) -> None:
    provider = unique_provider()
    name = provider.info.name
    settings = Settings(provider_base_urls={name: server.url}, kafka_bootstrap=services.kafka_bootstrap)
    bus = KafkaBus(services.kafka_bootstrap, request_timeout_ms=3000, flush_timeout_s=3)
    await bus.start()
    expected = 0
    scenarios = ["price_moved", "default"]
    try:
        store = EnvSecretStore({f"GPUBROKER_SECRET_{name.upper()}_TOKEN": "t-" + secrets.token_hex(4)})
        async with ProviderWorker(provider, bus=bus, secrets=store, settings=settings, state_dir=tmp_path) as worker:
            await worker.poll_once()
            for step in range(6):
                if step == 2:
                    services_cmd("stop", "kafka")
                if step == 4:
                    services_cmd("start", "kafka")
                server.scenario = scenarios[step % 2]
                outcome = await worker.poll_once()
                assert outcome.ok
                expected += len(outcome.changes.price_updates)  # type: ignore[union-attr]
                if step == 3:
                    assert worker.outbox.pending > 0  # the outage really held changes back
            for _ in range(20):
                if await worker.outbox.drain():
                    break
            assert worker.outbox.pending == 0
    finally:
        services_cmd("start", "kafka")  # whatever happened above, leave the broker running
        await bus.stop()
    assert expected == 6

    reader = KafkaBus(services.kafka_bootstrap)
    seen: list[events.PriceUpdate] = []

    async def read() -> None:
        async for record in reader.subscribe([events.PRICE_UPDATES]):
            update = events.PriceUpdate.decode(record.value or b"")
            if update.provider == name:
                seen.append(update)
                if len(seen) >= expected:
                    return

    await asyncio.wait_for(read(), timeout=90)
    assert len(seen) >= expected


def seed(services: Services, provider: str, values: dict[str, str]) -> None:
    client = hvac.Client(url=services.vault_addr, token=services.vault_token)
    client.secrets.kv.v2.create_or_update_secret(
        path=f"gpubroker/providers/{provider}", secret=values, mount_point="secret"
    )


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_vault_outage_polls_on_cached_credentials_then_reports_unhealthy(
    services: Services, server: ReplayServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    provider = unique_provider()
    name = provider.info.name
    token = "vault-seeded-" + secrets.token_hex(10)
    seed(services, name, {"token": token})
    clock = Clock()
    store = VaultSecretStore(services.vault_addr, token=services.vault_token, clock=clock, timeout_s=1)
    settings = Settings(provider_base_urls={name: server.url}, snapshot_fallback=False)
    bus = MemoryBus()
    async with ProviderWorker(
        provider, bus=bus, secrets=store, settings=settings, state_dir=tmp_path, retry=RetryPolicy(attempts=1)
    ) as worker:
        assert (await worker.poll_once()).ok
        services_cmd("stop", "vault")
        try:
            clock.now = 3000
            assert (await worker.poll_once()).ok and worker.healthy
            clock.now = 3700
            outcome = await worker.poll_once()
            assert not outcome.ok and not worker.healthy
            assert "Vault unavailable" in (worker.last_error or "") and "3700s old" in (worker.last_error or "")
            healthy, why = worker.health.check()
            assert not healthy and "Vault unavailable" in why
        finally:
            services_cmd("start", "vault")
    published = b"".join(r.value or b"" for r in await drain(bus, events.OFFERS, events.PROVIDER_EVENTS))
    assert b"poll.failed" in published and token.encode() not in published
    assert token not in caplog.text


def test_worker_process_reports_health_and_stops_cleanly_on_sigterm(
    services: Services, vastai: RegisteredProvider, tmp_path: Path
) -> None:
    import json
    import os
    import signal
    import sys
    import time

    assert vastai.adapter.recordings is not None
    server = ReplayServer(vastai.adapter.recordings)
    server.start()
    gpubroker = Path(sys.executable).parent / "gpubroker"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUBROKER_")} | {
        "GPUBROKER_KAFKA_BOOTSTRAP": services.kafka_bootstrap,
        "GPUBROKER_DATA_DIR": str(tmp_path),
        "GPUBROKER_PROVIDER_BASE_URLS": json.dumps({"vastai": server.url}),
        "GPUBROKER_SNAPSHOT_FALLBACK": "false",
    }
    check = [gpubroker, "worker", "--provider", "vastai", "--check"]
    assert subprocess.run(check, env=env, capture_output=True).returncode == 1  # nothing reported yet
    worker = subprocess.Popen(
        [gpubroker, "worker", "--provider", "vastai", "--metrics-port", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(check, env=env, capture_output=True).returncode != 0:
            assert time.monotonic() < deadline, "the worker never reported healthy"
            time.sleep(0.5)
        worker.send_signal(signal.SIGTERM)
        output = worker.communicate(timeout=60)[0]
    finally:
        worker.kill()
        server.stop()
    assert worker.returncode == 0, output
    assert "worker for vastai stopped" in output and "Traceback" not in output
