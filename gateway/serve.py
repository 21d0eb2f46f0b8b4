"""Serving the gateway from the command line (``gpubroker up``, ``gpubroker migrate``)."""

from __future__ import annotations

import asyncio
import os
import sys

from gpubroker.core.logs import configure_logging
from gpubroker.core.settings import load_settings


def migrate() -> None:
    """Create or update the tables (SQLite in the data directory unless a database is set)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gpubroker.gateway.settings")
    import django
    from django.core.management import call_command

    django.setup(set_prefix=False)
    call_command("migrate", interactive=False, verbosity=0)


def prune() -> dict[str, int]:
    """Apply the retention periods once (the gateway also does so every hour)."""
    migrate()
    from gpubroker.gateway import retention

    return retention.prune(load_settings())


def run_up(*, host: str | None, port: int | None) -> int:
    import uvicorn

    from gpubroker.gateway.app import GatewayApplication

    settings = load_settings()
    configure_logging(settings.log_level)
    migrate()
    application = GatewayApplication(run_workers=True)
    host = host or settings.host
    port = settings.port if port is None else port
    config = uvicorn.Config(application, host=host, port=port, lifespan="on", log_config=None, access_log=False)
    server = uvicorn.Server(config)
    print(
        f"GPUBROKER ({settings.mode}) serving on http://{host}:{port}/api/v2/providers  "
        f"(health: http://{host}:{port}/health)",
        file=sys.stderr,
        flush=True,
    )
    asyncio.run(server.serve())
    return 0 if server.started else 1
