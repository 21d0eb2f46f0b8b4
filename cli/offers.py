"""``gpubroker offers`` and ``gpubroker rank``: the offer list and the TOPSIS ranking, as a table,
JSON or CSV, optionally grouped."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from gpubroker.cli import grouping, render
from gpubroker.cli.connection import add_connection_options, client_for, over_the_api
from gpubroker.cli.filters import SORTS, add_filter_options, filters_of

PAGE = 500
"""Offers per request when every page is read (the API's largest page)."""


def add_commands(commands: Any) -> None:
    offers = commands.add_parser(
        "offers",
        help="GPU offers matching filters, cheapest first: a table, --json or --csv",
        description="Offers from every provider through the gateway's API. "
        "Example: gpubroker offers H100:8 --max-price 30 --region us- --sort topsis",
    )
    add_filter_options(offers)
    offers.add_argument("--sort", choices=SORTS, default="price", help="order (default price)")
    offers.add_argument("--limit", type=int, default=20, metavar="N", help="offers to show (default 20)")
    offers.add_argument("--all", action="store_true", help="every matching offer, page after page")
    offers.add_argument(
        "--group-by", type=grouping.group_keys, metavar="KEYS", help=f"one row per group: {','.join(grouping.KEYS)}"
    )
    add_formats(offers)
    add_connection_options(offers)
    offers.set_defaults(run=over_the_api(run_offers))

    rank = commands.add_parser(
        "rank",
        help="the best offers by TOPSIS over price, performance, memory and availability, explained",
        description="Example: gpubroker rank H100 --w-price 0.6 --w-performance 0.4",
    )
    add_filter_options(rank)
    rank.add_argument("--limit", type=int, default=10, metavar="N", help="offers to rank (default 10)")
    add_formats(rank)
    add_connection_options(rank)
    rank.set_defaults(run=over_the_api(run_rank))


def add_formats(parser: argparse.ArgumentParser) -> None:
    formats = parser.add_mutually_exclusive_group()
    formats.add_argument("--json", action="store_true", help="JSON on standard output")
    formats.add_argument("--csv", action="store_true", help="CSV on standard output")


def run_offers(args: argparse.Namespace) -> int:
    filters = filters_of(args) | {"sort": args.sort}
    now = render.now()
    with client_for(args) as client:
        if args.all or args.group_by:
            first = client.offers(**filters, limit=PAGE)
            offers = list(first.items)
            if first.next_cursor is not None:
                offers += client.iter_offers(**filters, limit=PAGE, cursor=first.next_cursor)
            page = first
        else:
            page = client.offers(**filters, limit=args.limit)
            offers = page.items
    out = render.console()
    if args.group_by:
        _print_groups(out, grouping.grouped(offers, args.group_by), args)
    elif args.json:
        out.out(render.to_json([render.offer_record(offer, now) for offer in offers]), highlight=False)
    elif args.csv:
        out.out(render.offers_csv(offers, now), end="", highlight=False)
    else:
        out.print(render.offers_table(offers, now))
        shown = f"{len(offers)} of {page.total} offers" if len(offers) < page.total else f"{len(offers)} offers"
        out.print(f"{shown}" + ("; --all or --limit for more" if len(offers) < page.total else ""), style="dim")
    _footer(out, page.providers, machine=args.json or args.csv)
    return 0


def _print_groups(out: Any, groups: list[grouping.Group], args: argparse.Namespace) -> None:
    names = ["offers", "available", "min_price", "min_price_per_gpu", "mean_price_per_gpu"]
    rows = [[*g.key, g.offers, g.available, g.min_price, g.min_price_per_gpu, g.mean_price_per_gpu] for g in groups]
    if args.json:
        out.out(render.to_json([dict(zip([*args.group_by, *names], row, strict=True)) for row in rows]))
        return
    if args.csv:
        out.out(render.to_csv([*args.group_by, *names], rows), end="", highlight=False)
        return
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for key in args.group_by:
        table.add_column(key, no_wrap=True)
    for title in ("offers", "available", "min $/h", "min $/GPU/h", "mean $/GPU/h"):
        table.add_column(title, justify="right", no_wrap=True)
    for group in groups:
        keys = [str(value) for value in group.key]
        prices = [render.price(group.min_price), render.price(group.min_price_per_gpu)]
        table.add_row(*keys, str(group.offers), str(group.available), *prices, render.price(group.mean_price_per_gpu))
    out.print(table)
    out.print(f"{len(groups)} groups", style="dim")


def run_rank(args: argparse.Namespace) -> int:
    now = render.now()
    with client_for(args) as client:
        ranking = client.ranking(**filters_of(args), limit=args.limit)
    out = render.console()
    if args.json:
        out.out(render.to_json(ranking), highlight=False)
    elif args.csv:
        header = ["rank", "closeness", *(column.name for column in render.COLUMNS), "id"]
        rows = (
            [item.rank, round(item.closeness, 6), *(c.value(item.offer, now) for c in render.COLUMNS), item.offer.id]
            for item in ranking.items
        )
        out.out(render.to_csv(header, rows), end="", highlight=False)
    else:
        ranked = Table(show_edge=False, pad_edge=False, header_style="bold")
        ranked.add_column("#", justify="right")
        ranked.add_column("closeness", justify="right")
        for column in render.COLUMNS:
            ranked.add_column(column.title, justify=column.justify, no_wrap=True)  # type: ignore[arg-type]
        for item in ranking.items:
            cells = [render.cell(column, item.offer, now) for column in render.COLUMNS]
            ranked.add_row(str(item.rank), f"{item.closeness:.3f}", *cells)
        out.print(ranked)
        weights = ", ".join(f"{c.name} {c.weight:.2f}" for c in ranking.criteria)
        left_out = ", ".join(f"{count} {why.replace('_', ' ')}" for why, count in ranking.excluded.items() if count)
        out.print(f"{ranking.ranked} ranked; weights: {weights}" + (f"; left out: {left_out}" if left_out else ""))
    _footer(out, ranking.providers, machine=args.json or args.csv)
    return 0


def _footer(out: Any, providers: Any, *, machine: bool) -> None:
    """The degraded/stale providers: under the table, or on standard error for JSON and CSV."""
    line = render.freshness_footer(providers, render.now())
    if line is None:
        return
    if machine:
        render.Console(stderr=True, highlight=False).print(line, style="yellow", soft_wrap=True)
    else:
        out.print(line, style="yellow", soft_wrap=True)
