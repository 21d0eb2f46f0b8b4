"""The offer list's filters as command-line options, one table for every command that filters.

Each option maps to one query parameter of ``GET /api/v2/providers`` by name, so the gateway checks
the values and its error names the parameter; a test checks this table against the parameters of
the gateway's OpenAPI document. A GPU spec argument (``H100``, ``H100:8``) is the ``gpu`` filter,
and a count after the colon asks for exactly that many GPUs.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Filter:
    parameter: str
    kind: type | None
    """``float``/``int``: a number; ``list``: one or more values, comma-separated or repeated;
    ``None``: a flag (for ``spot`` and ``resold``)."""
    help: str
    option: str | None = None
    """The option when it is not the parameter's name with dashes."""

    @property
    def flag(self) -> str:
        return self.option or "--" + self.parameter.replace("_", "-")


FILTERS: tuple[Filter, ...] = (
    Filter("provider", list, "provider name(s), e.g. vastai,runpod"),
    Filter("vendor", list, "GPU vendor(s): nvidia, amd, intel, google, groq"),
    Filter("min_gpus", int, "at least this many GPUs in the instance"),
    Filter("max_gpus", int, "at most this many GPUs in the instance"),
    Filter("min_gpu_memory", float, "GB of memory per GPU, at least"),
    Filter("max_gpu_memory", float, "GB of memory per GPU, at most"),
    Filter("min_total_gpu_memory", float, "GB of GPU memory in the instance, at least"),
    Filter("min_vcpus", float, "vCPUs, at least"),
    Filter("max_vcpus", float, "vCPUs, at most"),
    Filter("min_ram", float, "GB of RAM, at least"),
    Filter("max_ram", float, "GB of RAM, at most"),
    Filter("min_storage", float, "GB of local storage, at least"),
    Filter("max_storage", float, "GB of local storage, at most"),
    Filter("min_price", float, "USD per hour for the instance, at least"),
    Filter("max_price", float, "USD per hour for the instance, at most"),
    Filter("max_price_per_gpu", float, "USD per GPU-hour, at most"),
    Filter("spot", None, "spot/interruptible only (--no-spot: on-demand only)"),
    Filter("resold", None, "--no-resold hides capacity a marketplace resells from another cloud"),
    Filter("region_prefix", list, "region id or its beginning, e.g. us- or europe-west", option="--region"),
    Filter("region", list, "exact region id(s), case-insensitive", option="--exact-region"),
    Filter("continent", list, "europe, north_america, asia, ..."),
    Filter("availability", list, "available, limited, unavailable"),
    Filter("compliance", list, "tags the offer must all carry, e.g. soc2"),
    Filter("cpu_arch", list, "x86_64, arm64"),
    Filter("min_compute_capability", float, "NVIDIA CUDA compute capability, at least (8.0, 8.9, 9.0)"),
    Filter("interconnect", list, "nvlink, sxm, pcie, infiniband: all those given"),
    Filter("max_age_s", float, "the offer's data at most this many seconds old"),
)
SORTS = ("price", "-price", "price_per_gpu", "-price_per_gpu", "performance", "value", "topsis")
WEIGHTS: tuple[Filter, ...] = (
    Filter("w_price", float, "TOPSIS weight of a low price (default 0.4)"),
    Filter("w_performance", float, "TOPSIS weight of FP16 TFLOPS x GPUs (default 0.3)"),
    Filter("w_memory", float, "TOPSIS weight of total GPU memory (default 0.2)"),
    Filter("w_availability", float, "TOPSIS weight of availability (default 0.1)"),
)


def add_filter_options(parser: argparse.ArgumentParser, *, weights: bool = True) -> None:
    parser.add_argument("gpus", nargs="*", metavar="GPU[:COUNT]", help="GPU type(s), e.g. H100 or H100:8")
    group = parser.add_argument_group("filters")
    for item in FILTERS + (WEIGHTS if weights else ()):
        if item.kind is None:
            group.add_argument(item.flag, dest=item.parameter, action=argparse.BooleanOptionalAction, help=item.help)
        elif item.kind is list:
            group.add_argument(item.flag, dest=item.parameter, action="append", metavar="VALUE", help=item.help)
        else:
            group.add_argument(item.flag, dest=item.parameter, type=item.kind, metavar="N", help=item.help)


def filters_of(args: argparse.Namespace) -> dict[str, Any]:
    """The API's filters from the parsed options (only those given)."""
    chosen: dict[str, Any] = {}
    for item in FILTERS + WEIGHTS:
        value = getattr(args, item.parameter, None)
        if value is not None:
            chosen[item.parameter] = _values(value) if item.kind is list else value
    if args.gpus:
        chosen.update(gpu_spec(args.gpus))
    return chosen


def gpu_spec(specs: Sequence[str]) -> dict[str, Any]:
    """``["H100:8", "A100:8"]`` -> ``gpu`` and, for a count, ``min_gpus`` = ``max_gpus``."""
    names, counts = [], set()
    for spec in specs:
        name, _, count = spec.partition(":")
        if not name:
            raise argparse.ArgumentTypeError(f"{spec!r}: give a GPU type before the count, e.g. H100:8")
        names.append(name)
        if count:
            if not count.isdigit() or int(count) < 1:
                raise argparse.ArgumentTypeError(f"{spec!r}: the count after ':' must be a whole number, at least 1")
            counts.add(int(count))
    if len(counts) > 1:
        raise argparse.ArgumentTypeError("give the same GPU count for every GPU type, or none")
    chosen: dict[str, Any] = {"gpu": names}
    if counts:
        chosen["min_gpus"] = chosen["max_gpus"] = counts.pop()
    return chosen


def _values(given: list[str]) -> list[str]:
    return [value.strip() for option in given for value in option.split(",") if value.strip()]
