"""``gpubroker history H100 --days 7``: the lowest and mean observed price per provider over time,
as a terminal chart (one sparkline per provider on a shared scale, oldest bucket first)."""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from rich.table import Table

from gpubroker.cli import render
from gpubroker.cli.connection import add_connection_options, client_for, over_the_api
from gpubroker.cli.offers import add_formats
from gpubroker_client import PriceHistory

BARS = "▁▂▃▄▅▆▇█"


def add_commands(commands: Any) -> None:
    history = commands.add_parser(
        "history", help="lowest and mean price per provider over the last days, as a terminal chart"
    )
    history.add_argument("gpu", nargs="+", metavar="GPU", help="GPU type(s), e.g. H100")
    history.add_argument("--days", type=_days, default=7, metavar="N", help="how far back, 1 to 30 (default 7)")
    history.add_argument("--provider", action="append", metavar="NAME", help="only these providers")
    history.add_argument(
        "--bucket", choices=("hour", "day"), help="one point per hour or day (default: hour up to 2 days, else day)"
    )
    add_formats(history)
    add_connection_options(history)
    history.set_defaults(run=over_the_api(run_history))


def _days(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 30:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number of days, 1 to 30 (history is kept 30 days)")
    return int(text)


def run_history(args: argparse.Namespace) -> int:
    until = render.now()
    bucket = args.bucket or ("hour" if args.days <= 2 else "day")
    with client_for(args) as client:
        history = client.price_history(
            gpu=args.gpu, provider=args.provider, since=until - timedelta(days=args.days), until=until, bucket=bucket
        )
    out = render.console()
    header = ["gpu_type", "provider", "at", "min", "mean", "max", "observations"]
    rows = [
        [s.gpu_type, s.provider, p.at, p.min, p.mean, p.max, p.observations] for s in history.series for p in s.points
    ]
    if args.json:
        out.out(render.to_json(history), highlight=False)
    elif args.csv:
        out.out(render.to_csv(header, rows), end="", highlight=False)
    elif not history.series:
        out.print(f"no prices observed for {', '.join(args.gpu)} in the last {args.days} days")
    else:
        out.print(chart(history))
    return 0


def chart(history: PriceHistory) -> Table:
    """Per provider and GPU type: the lowest and the mean price over the period, and a sparkline of
    each bucket's lowest (top line) and mean (bottom line) on one scale shared by every row."""
    slots = _slots(history)
    every = [p for s in history.series for p in s.points]
    low, high = min(p.min for p in every), max(p.mean for p in every)
    table = Table(show_edge=False, pad_edge=False, header_style="bold", title=_title(history, slots))
    for title, justify in (("provider", "left"), ("GPU", "left"), ("lowest $/h", "right"), ("mean $/h", "right")):
        table.add_column(title, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    table.add_column(f"min / mean per {history.bucket}", no_wrap=True)
    for series in sorted(history.series, key=lambda s: min(p.min for p in s.points)):
        by_slot = {slots.index(p.at): p for p in series.points if p.at in slots}
        lows = "".join(_bar(by_slot[i].min, low, high) if i in by_slot else " " for i in range(len(slots)))
        means = "".join(_bar(by_slot[i].mean, low, high) if i in by_slot else " " for i in range(len(slots)))
        total = sum(p.mean * p.observations for p in series.points) / sum(p.observations for p in series.points)
        lowest = min(p.min for p in series.points)
        table.add_row(
            series.provider, series.gpu_type or "-", render.price(lowest), render.price(total),
            f"[green]{lows}[/]\n[cyan]{means}[/]",
        )  # fmt: skip
    table.caption = f"scale {render.price(low)} (▁) to {render.price(high)} (█); green: lowest, cyan: mean"
    return table


def _slots(history: PriceHistory) -> list[datetime]:
    """Every bucket's start in the period, oldest first, so gaps show as gaps."""
    step = timedelta(hours=1) if history.bucket == "hour" else timedelta(days=1)
    starts = sorted({p.at for s in history.series for p in s.points})
    slots, at = [], starts[0]
    while at <= starts[-1]:
        slots.append(at)
        at += step
    return slots


def _title(history: PriceHistory, slots: list[datetime]) -> str:
    return f"{slots[0]:%Y-%m-%d %H:%M} to {slots[-1]:%Y-%m-%d %H:%M} UTC, {len(slots)} {history.bucket}(s)"


def _bar(value: Decimal, low: Decimal, high: Decimal) -> str:
    if high <= low:
        return BARS[0]
    share = float((value - low) / (high - low))
    return BARS[min(len(BARS) - 1, int(share * len(BARS)))]
