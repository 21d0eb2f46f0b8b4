"""``gpubroker worker --provider NAME``: one provider's worker as its own process."""

from __future__ import annotations

import asyncio
import logging
import signal

from gpubroker.core.bus import open_bus
from gpubroker.core.errors import ConfigurationError
from gpubroker.core.logs import configure_logging
from gpubroker.core.plugins import RegisteredProvider, load_providers
from gpubroker.core.secrets import open_secret_store
from gpubroker.core.settings import Settings, load_settings
from gpubroker.workers.worker import ProviderWorker

log = logging.getLogger(__name__)


def run_worker(provider_name: str, *, once: bool, metrics_port: int) -> int:
    settings = load_settings()
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
    return asyncio.run(_run(provider, settings, once=once))


async def _run(provider: RegisteredProvider, settings: Settings, *, once: bool) -> int:
    bus = open_bus(settings)
    await bus.start()
    try:
        async with ProviderWorker(provider, bus=bus, secrets=open_secret_store(settings), settings=settings) as worker:
            if once:
                outcome = await worker.poll_once()
                return 0 if outcome.ok else 1
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            log.info("worker for %s started", provider.info.name)
            await worker.run(stop)
            log.info("worker for %s stopped", provider.info.name)
            return 0
    finally:
        await bus.stop()
