"""Offers as a person reads them: terminal tables (rich), CSV and JSON, the data's age, grouping,
and the footer that names providers whose data is degraded or stale."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from gpubroker_client import Offer, ProviderFreshness
from gpubroker_client.decoding import json_name


@dataclass(frozen=True)
class Column:
    title: str
    """As the terminal table heads it."""
    name: str
    """As CSV heads it."""
    value: Callable[[Offer, datetime], Any]
    justify: str = "left"


def price(value: Decimal | None) -> str:
    return "-" if value is None else f"${value:,.2f}" if value >= 1 else f"${value:.4f}".rstrip("0")


def number(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def age(since: datetime | None, now: datetime) -> str:
    """``42s``, ``5m``, ``3h``, ``7d``: how old data is."""
    if since is None:
        return "-"
    seconds = max(0, int((now - since).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _age_s(offer: Offer, now: datetime) -> int:
    return max(0, int((now - offer.last_updated).total_seconds()))


COLUMNS: tuple[Column, ...] = (
    Column("$/h", "price_per_hour", lambda o, _: o.price_per_hour, "right"),
    Column("$/GPU/h", "price_per_gpu", lambda o, _: o.price_per_gpu, "right"),
    Column("GPU", "gpu_type", lambda o, _: o.gpu_type or o.gpu_name),
    Column("GPUs", "gpu_count", lambda o, _: o.gpu_count, "right"),
    Column("GB/GPU", "gpu_memory_gb", lambda o, _: o.gpu_memory_gb, "right"),
    Column("vCPUs", "vcpus", lambda o, _: o.vcpus, "right"),
    Column("RAM GB", "ram_gb", lambda o, _: o.ram_gb, "right"),
    Column("region", "region", lambda o, _: o.region),
    Column("availability", "availability_status", lambda o, _: o.availability_status),
    Column("spot", "spot", lambda o, _: o.spot),
    Column("provider", "provider", lambda o, _: o.provider),
    Column("age", "data_age_s", _age_s, "right"),
)


def cell(column: Column, offer: Offer, now: datetime) -> str:
    value = column.value(offer, now)
    if column.name.startswith("price"):
        return price(value)
    if column.name == "data_age_s":
        return age(offer.last_updated, now)
    if column.name == "spot":
        return "spot" if value else ""
    if isinstance(value, float) or value is None:
        return number(value)
    return str(value)


def offers_table(offers: Sequence[Offer], now: datetime, *, highlight: dict[str, str] | None = None) -> Table:
    """``highlight``: offer id -> ``up`` or ``down``, for prices that just changed."""
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for column in COLUMNS:
        table.add_column(column.title, justify=column.justify, no_wrap=True)  # type: ignore[arg-type]
    for offer in offers:
        cells: list[str | Text] = [cell(column, offer, now) for column in COLUMNS]
        moved = (highlight or {}).get(offer.id)
        if moved is not None:
            arrow, style = ("▲", "bold red") if moved == "up" else ("▼", "bold green")
            cells[0] = Text(f"{arrow} {cells[0]}", style=style)
        dim = offer.quarantined is not None or offer.availability_status == "unavailable"
        table.add_row(*cells, style="dim" if dim else None)
    return table


def freshness_footer(providers: Iterable[ProviderFreshness], now: datetime) -> str | None:
    """One line naming the providers whose data is degraded, unhealthy or stale, or None; those in
    the same state are named together."""
    states: dict[str, list[ProviderFreshness]] = {}
    for provider in providers:
        if provider.status == "healthy" and not provider.stale:
            continue
        what = [provider.status] if provider.status != "healthy" else []
        if provider.stale:
            what.append("stale")
        if provider.source == "snapshot":
            what.append("bundled snapshot")
        states.setdefault(", ".join(what), []).append(provider)
    if not states:
        return None
    parts = []
    for state, members in states.items():
        ages = sorted({age(p.data_as_of, now) for p in members if p.data_as_of is not None})
        data = f", data {ages[0]}{'-' + ages[-1] if len(ages) > 1 else ''} old" if ages else ""
        parts.append(f"{', '.join(p.name for p in members)} ({state}{data})")
    return f"degraded or stale: {'; '.join(parts)}"


def offer_record(offer: Offer, now: datetime) -> dict[str, Any]:
    """The offer as the API writes it, plus ``price_per_gpu`` and ``data_age_s``."""
    record = {json_name(item): getattr(offer, item.name) for item in dataclasses.fields(offer)}
    return {**record, "price_per_gpu": offer.price_per_gpu, "data_age_s": _age_s(offer, now)}


def to_json(value: Any) -> str:
    """JSON with decimals written as plain numbers, as the API writes them."""
    return json.dumps(value, default=_plain, indent=2)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {json_name(item): getattr(value, item.name) for item in dataclasses.fields(value)}
    raise TypeError(f"{type(value).__name__} is not JSON")


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if value is None else _csv_value(value) for value in row])
    return out.getvalue()


def _csv_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def offers_csv(offers: Iterable[Offer], now: datetime) -> str:
    header = [column.name for column in COLUMNS] + ["last_updated", "id"]
    rows = ([column.value(o, now) for column in COLUMNS] + [o.last_updated, o.id] for o in offers)
    return to_csv(header, rows)


PIPED_WIDTH = 200
"""Columns of a table written to a file or a pipe (a terminal's own width otherwise, or COLUMNS)."""


def console() -> Console:
    """Standard output; colours only on a terminal, and a wide table when piped."""
    sized = sys.stdout.isatty() or "COLUMNS" in os.environ
    return Console(highlight=False, soft_wrap=False, width=None if sized else PIPED_WIDTH)


def now() -> datetime:
    return datetime.now(UTC)
