"""``gpubroker gpus``: the GPU catalogue with its datasheet figures, from the gateway."""

from __future__ import annotations

import argparse

from rich.table import Table

from gpubroker.cli import render
from gpubroker.cli.connection import add_connection_options, client_for, over_the_api
from gpubroker.cli.offers import add_formats

COLUMNS = ("name", "vendor", "architecture", "memory_gb", "fp16_tflops", "fp32_tflops", "bandwidth_gbs")


def add_options(gpus: argparse.ArgumentParser) -> None:
    """``gpubroker gpus`` with no action lists the catalogue (``resolve`` and ``score`` are actions)."""
    gpus.add_argument("--vendor", action="append", metavar="VENDOR", help="nvidia, amd, intel, google, groq")
    add_formats(gpus)
    add_connection_options(gpus)
    gpus.set_defaults(run=over_the_api(run_gpus))


def run_gpus(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        catalogue = client.gpus(vendor=args.vendor)
    out = render.console()
    if args.json:
        out.out(render.to_json(catalogue.items), highlight=False)
        return 0
    header = [*COLUMNS, "compute_capability", "class"]
    rows = [
        [g.name, g.vendor, g.architecture, "/".join(map(str, g.memory_gb)), g.fp16_tflops, g.fp32_tflops,
         g.bandwidth_gbs, g.compute_capability, g.gpu_class]
        for g in catalogue.items
    ]  # fmt: skip
    if args.csv:
        out.out(render.to_csv(header, rows), end="", highlight=False)
        return 0
    table = Table(show_edge=False, pad_edge=False, header_style="bold")
    for title in ("GPU", "vendor", "architecture", "GB", "FP16 TFLOPS", "FP32 TFLOPS", "GB/s", "CUDA CC", "class"):
        table.add_column(title, no_wrap=True, justify="right" if "TFLOPS" in title or title == "GB/s" else "left")
    for row in rows:
        table.add_row(*(render.number(v) if isinstance(v, float) or v is None else str(v) for v in row))
    out.print(table)
    out.print(f"{catalogue.count} GPU types", style="dim")
    return 0
