"""``gpubroker worker --provider NAME``: one provider's worker (or one shard of it) as its own
process, carrying out the provider's rental commands too when its plugin rents, and ``--check``,
its health probe."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from gpubroker.core import tracing
from gpubroker.core.bus import open_bus
from gpubroker.core.errors import ConfigurationError
from gpubroker.core.logs import configure_logging
from gpubroker.core.plugins import RegisteredProvider, load_providers
from gpubroker.core.renting import can_rent
from gpubroker.core.secrets import open_secret_store
from gpubroker.core.settings import Settings, load_settings
from gpubroker.workers.health import HealthFile
from gpubroker.workers.poll import Shard
from gpubroker.workers.rental_agent import RentalAgent
from gpubroker.workers.worker import ProviderWorker, state_name

log = logging.getLogger(__name__)


def parse_shard(text: str) -> Shard:
    try:
        index, count = (int(part) for part in text.split("/"))
        return Shard(index, count)
    except ValueError as exc:
        raise ConfigurationError(f"--shard {text!r}: expected INDEX/COUNT such as 0/3 ({exc})") from None


def check_worker(provider_name: str, shard: Shard) -> int:
    settings = load_settings(process="worker")
    health = HealthFile(settings.data_dir / "workers" / f"{state_name(provider_name, shard)}.health.json")
    healthy, explanation = health.check()
    print(f"{provider_name}: {explanation}", file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


def run_worker(provider_name: str, *, once: bool, metrics_port: int, shard: Shard) -> int:
    settings = load_settings(process="worker")
    configure_logging(settings.log_level, json=not settings.embedded)
    if not settings.kafka_bootstrap:
        raise ConfigurationError(
            "a standalone worker publishes to Kafka: set GPUBROKER_KAFKA_BOOTSTRAP "
            "(or run 'gpubroker up', which runs every worker inside the gateway)"
        )
    provider = load_providers(allow=settings.plugins, block=settings.plugins_blocked).get(provider_name)
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=settings.host)
    tracing.configure(f"gpubroker-worker-{provider_name}")
    try:
        return asyncio.run(_run(provider, settings, once=once, shard=shard))
    finally:
        tracing.flush()


async def _run(provider: RegisteredProvider, settings: Settings, *, once: bool, shard: Shard) -> int:
    bus = open_bus(settings)
    await bus.start()
    try:
        worker = ProviderWorker(provider, bus=bus, secrets=open_secret_store(settings), settings=settings, shard=shard)
        async with worker:
            if once:
                outcome = await worker.poll_once()
                return 0 if outcome.ok else 1
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            log.info("worker for %s (shard %d/%d) started", provider.info.name, shard.index, shard.count)
            renting = None
            if can_rent(provider.adapter):  # its shards share the rental commands (one consumer group)
                agent = RentalAgent(provider, bus=bus, secrets=open_secret_store(settings), settings=settings)
                renting = asyncio.create_task(agent.run(), name=f"rentals:{provider.info.name}")
            try:
                await worker.run(stop)
            finally:
                if renting is not None:
                    renting.cancel()
                    await asyncio.gather(renting, return_exceptions=True)
            log.info("worker for %s stopped", provider.info.name)
            return 0
    finally:
        await bus.stop()
