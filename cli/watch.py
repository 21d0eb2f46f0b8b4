"""``gpubroker watch H100 --max-price 2.5``: the matching offers as a live table, updated from the
gateway's event stream (Server-Sent Events, resumed with ``Last-Event-ID`` after a dropped
connection, by the client), cheapest first; a changed price is marked ▲/▼ for a while."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.text import Text

from gpubroker.cli import render
from gpubroker.cli.connection import add_connection_options, async_client_for, over_the_api
from gpubroker.cli.filters import add_filter_options, filters_of
from gpubroker_client import Offer, ProviderFreshness, StreamEvent
from gpubroker_client.decoding import decode

HIGHLIGHT_S = 10.0
"""How long a changed price stays marked."""
PAGE = 500


def add_commands(commands: Any) -> None:
    watch = commands.add_parser(
        "watch",
        help="a live table of matching offers, updated as prices change (Ctrl-C to stop)",
        description="Example: gpubroker watch H100 --max-price 2.5",
    )
    add_filter_options(watch, weights=False)
    watch.add_argument("--limit", type=int, default=20, metavar="N", help="offers to show, cheapest first (default 20)")
    add_connection_options(watch)
    watch.set_defaults(run=over_the_api(run_watch))


def run_watch(args: argparse.Namespace) -> int:
    asyncio.run(_watch(args, filters_of(args)))
    return 0


@dataclass
class Board:
    """What the table shows: every matching offer, the providers' health, and recent changes."""

    offers: dict[str, Offer]
    providers: dict[str, ProviderFreshness]
    changed: dict[str, tuple[str, float]] = field(default_factory=dict)
    """offer id -> (``up``/``down``, when)."""
    events: int = 0

    def apply(self, event: StreamEvent) -> None:
        data = event.data if isinstance(event.data, dict) else {}
        self.events += 1
        if event.event == "offer_removed":
            self.offers.pop(str(data.get("offer_id")), None)
        elif event.event in ("price_update", "availability", "offer_added") and data.get("offer"):
            offer = decode(Offer, data["offer"])
            before = self.offers.get(offer.id)
            self.offers[offer.id] = offer
            old, new = None if before is None else before.price_per_hour, offer.price_per_hour
            if old is not None and new is not None and new != old:
                self.changed[offer.id] = ("up" if new > old else "down", time.monotonic())
        elif event.event == "health_status" and data.get("name"):
            with contextlib.suppress(TypeError):  # a health event without every field: keep what was known
                self.providers[str(data["name"])] = decode(ProviderFreshness, data)

    def view(self, limit: int, status: str) -> Group:
        now = render.now()
        recent = time.monotonic() - HIGHLIGHT_S
        highlight = {offer_id: moved for offer_id, (moved, at) in self.changed.items() if at >= recent}
        shown = sorted(self.offers.values(), key=_cheapest)[:limit]
        parts: list[Any] = [render.offers_table(shown, now, highlight=highlight)]
        parts.append(Text(f"{len(shown)} of {len(self.offers)} offers; {status}; Ctrl-C to stop", style="dim"))
        footer = render.freshness_footer(self.providers.values(), now)
        if footer is not None:
            parts.append(Text(footer, style="yellow"))
        return Group(*parts)


def _cheapest(offer: Offer) -> tuple[bool, Any, str]:
    return (offer.price_per_hour is None, offer.price_per_hour or 0, offer.id)


async def _watch(args: argparse.Namespace, filters: dict[str, Any]) -> None:
    async with async_client_for(args) as client:
        offers = [offer async for offer in client.iter_offers(**filters, sort="price", limit=PAGE)]
        first = await client.offers(**filters, limit=1)
        board = Board({offer.id: offer for offer in offers}, {p.name: p for p in first.providers})
        status = {"text": "live"}
        with Live(
            get_renderable=lambda: board.view(args.limit, status["text"]),
            console=render.console(),
            refresh_per_second=4,
            screen=False,
        ):
            async for event in client.stream(**filters):
                if event.event == "gap":
                    status["text"] = "some changes were missed: restart to reload"
                board.apply(event)
