"""Serving the gateway from the command line (``gpubroker up``, ``gpubroker migrate``)."""

from __future__ import annotations

import os
import sys
from typing import Any

from gpubroker.core.logs import configure_logging
from gpubroker.core.settings import load_settings
from gpubroker.gateway.draining import draining_server


def migrate() -> None:
    """Create or update the tables (SQLite in the data directory unless a database is set)."""
    _setup_django()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def unapplied_migrations() -> list[str]:
    """Migrations this release has that the database lacks: a gateway pod waits on this (an init
    container) until the release's migration Job has run, so no instance serves an old schema."""
    _setup_django()
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _backwards in plan]


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gpubroker.gateway.settings")
    import django

    django.setup(set_prefix=False)


def prune() -> dict[str, int]:
    """Apply the retention periods once (the gateway also does so every hour)."""
    migrate()
    from gpubroker.gateway import retention

    return retention.prune(load_settings())


def embedded_application() -> Any:
    """The application ``gpubroker up`` serves: the gateway with every provider's worker inside."""
    from gpubroker.gateway.app import GatewayApplication

    configure_logging(load_settings().log_level)
    return GatewayApplication(run_workers=True)


def run_up(*, host: str | None, port: int | None) -> int:
    """Serve with granian, the ASGI server chosen by measurement (``bench/cached_get.py``)."""
    from granian.constants import Interfaces, Loops

    settings = load_settings()
    configure_logging(settings.log_level)
    migrate()
    host = host or settings.host
    port = settings.port if port is None else port
    server = draining_server(
        "gpubroker.gateway.serve:embedded_application",
        drain_s=0,  # one person's own gateway: Ctrl-C stops it at once
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=1,
        loop=Loops.uvloop,
        log_access=False,
    )
    print(
        f"GPUBROKER ({settings.mode}) serving on http://{host}:{port}/api/v2/providers  "
        f"(health: http://{host}:{port}/health)",
        file=sys.stderr,
        flush=True,
    )
    server.serve()
    return 0


def run_serve(*, host: str | None, port: int | None, workers: int) -> int:
    """A production gateway instance (``gpubroker serve``): granian on the configured services,
    draining on SIGTERM for ``GPUBROKER_SHUTDOWN_DRAIN_S`` before it stops (``draining``)."""
    from granian.constants import Interfaces, Loops

    settings = load_settings()
    configure_logging(settings.log_level)
    host = host or settings.host
    port = settings.port if port is None else port
    server = draining_server(
        "gpubroker.gateway.asgi:application",
        drain_s=settings.shutdown_drain_s,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        loop=Loops.uvloop,
        log_access=False,
    )
    print(f"GPUBROKER ({settings.mode}) serving on http://{host}:{port}", file=sys.stderr, flush=True)
    server.serve()
    return 0
