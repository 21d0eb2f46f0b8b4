"""``gpubroker providers``: each provider's health and how fresh its data is."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from gpubroker.cli import render
from gpubroker.cli.connection import add_connection_options, client_for, over_the_api
from gpubroker.cli.offers import add_formats

STYLES = {"healthy": "green", "degraded": "yellow", "unhealthy": "red"}


def add_commands(commands: Any) -> None:
    providers = commands.add_parser("providers", help="each provider's status, data source and age, and offers")
    add_formats(providers)
    add_connection_options(providers)
    providers.set_defaults(run=over_the_api(run_providers))


def run_providers(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        providers = client.offers(limit=1).providers
    now = render.now()
    out = render.console()
    if args.json:
        out.out(render.to_json(providers), highlight=False)
        return 0
    header = ["name", "status", "source", "data_as_of", "stale", "offers", "last_poll_at", "last_error"]
    if args.csv:
        rows = ([getattr(p, name) for name in header] for p in providers)
        out.out(render.to_csv(header, rows), end="", highlight=False)
        return 0
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for title in ("provider", "status", "source", "data age", "stale", "offers", "last poll", "last error"):
        table.add_column(title, justify="right" if title in ("offers", "data age", "last poll") else "left")
    for p in providers:
        table.add_row(
            p.name,
            f"[{STYLES.get(p.status, 'white')}]{p.status}[/]",
            p.source or "-",
            render.age(p.data_as_of, now),
            "[yellow]stale[/]" if p.stale else "",
            str(p.offers),
            render.age(p.last_poll_at, now),
            p.last_error or "",
        )
    out.print(table)
    healthy = sum(1 for p in providers if p.status == "healthy" and not p.stale)
    out.print(f"{len(providers)} providers, {healthy} healthy with fresh data", style="dim")
    return 0
