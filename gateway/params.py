"""The query language shared by every offer endpoint, and its translation into an ``OfferQuery``.

The same schema serves the list's query string (``GET /providers?gpu=H100&min_gpus=8``) and the
JSON bodies of ``POST /providers/query``, ``/bulk/query`` and ``/decide``. Type and range errors
come from the schema; names that must exist (GPUs, providers, ...) and cross-field rules are
checked here. Either way the answer is a 422 that names the parameter.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from ninja import Schema
from pydantic import ConfigDict, Field

from gpubroker.core.geo import CONTINENTS
from gpubroker.core.gpus import get, resolve
from gpubroker.core.offer import INTERCONNECTS, Availability
from gpubroker.gateway import gpus
from gpubroker.gateway.catalog import ranking
from gpubroker.gateway.catalog.filters import RANGES, OfferFilters
from gpubroker.gateway.catalog.query import DEFAULT_LIMIT, MAX_LIMIT, SORTS, OfferQuery
from gpubroker.gateway.errors import invalid

MAX_VALUES = 50
"""Values one list parameter takes (repeated, each possibly comma-separated)."""
MAX_VALUE_LENGTH = 256
MAX_WEIGHT = 1000.0
"""Weights are normalised to sum 1, so only their ratios matter; a bound keeps the arithmetic exact
(1e308 would overflow the sum and silently weigh nothing)."""

Amount = Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)]
Word = Annotated[str, Field(max_length=MAX_VALUE_LENGTH)]
Names = Annotated[
    list[Word] | None, Field(max_length=MAX_VALUES, description="One or more; repeat the parameter or comma-separate.")
]
Weight = Annotated[float | None, Field(ge=0, le=MAX_WEIGHT, allow_inf_nan=False)]
CPU_ARCHS = ("x86_64", "arm64")


class OfferFilterParams(Schema):
    model_config = ConfigDict(extra="forbid")

    provider: Names = None
    gpu: Annotated[
        list[Word] | None,
        Field(max_length=MAX_VALUES, description="GPU types, e.g. H100 or 'RTX 4090' (see /api/v2/gpus)."),
    ] = None
    vendor: Annotated[
        list[Word] | None, Field(max_length=MAX_VALUES, description="GPU vendors: " + ", ".join(gpus.VENDORS) + ".")
    ] = None
    min_gpus: Annotated[int | None, Field(ge=1, description="At least this many GPUs.")] = None
    max_gpus: Annotated[int | None, Field(ge=1, description="At most this many GPUs.")] = None
    min_gpu_memory: Annotated[Amount | None, Field(description="GB of memory per GPU, at least.")] = None
    max_gpu_memory: Annotated[Amount | None, Field(description="GB of memory per GPU, at most.")] = None
    min_total_gpu_memory: Annotated[Amount | None, Field(description="GB of GPU memory in the instance.")] = None
    min_vcpus: Annotated[Amount | None, Field(description="vCPUs, at least.")] = None
    max_vcpus: Annotated[Amount | None, Field(description="vCPUs, at most.")] = None
    min_ram: Annotated[Amount | None, Field(description="GB of system RAM.")] = None
    max_ram: Annotated[Amount | None, Field(description="GB of system RAM, at most.")] = None
    min_storage: Annotated[Amount | None, Field(description="GB of local storage.")] = None
    max_storage: Annotated[Amount | None, Field(description="GB of local storage, at most.")] = None
    min_price: Annotated[Amount | None, Field(description="USD per hour for the instance.")] = None
    max_price: Annotated[Amount | None, Field(description="USD per hour for the instance, at most.")] = None
    max_price_per_gpu: Annotated[Amount | None, Field(description="USD per GPU-hour.")] = None
    spot: Annotated[bool | None, Field(description="true: spot/interruptible only; false: on-demand only.")] = None
    resold: Annotated[bool | None, Field(description="false hides capacity a marketplace resells from a cloud.")] = None
    region: Annotated[
        list[Word] | None, Field(max_length=MAX_VALUES, description="Exact region ids (case-insensitive).")
    ] = None
    region_prefix: Annotated[
        list[Word] | None, Field(max_length=MAX_VALUES, description="Region id prefixes, e.g. us- or eu-.")
    ] = None
    continent: Annotated[list[Word] | None, Field(max_length=MAX_VALUES, description=", ".join(CONTINENTS) + ".")] = (
        None
    )
    availability: Annotated[
        list[Word] | None, Field(max_length=MAX_VALUES, description="available, limited and/or unavailable.")
    ] = None
    compliance: Annotated[
        list[Word] | None, Field(max_length=MAX_VALUES, description="Tags the offer must all carry.")
    ] = None
    cpu_arch: Annotated[list[Word] | None, Field(max_length=MAX_VALUES, description="x86_64 and/or arm64.")] = None
    min_compute_capability: Annotated[
        float | None,
        Field(ge=0, le=99, allow_inf_nan=False, description="NVIDIA CUDA compute capability, at least (8.0, 9.0)."),
    ] = None
    interconnect: Annotated[
        list[Word] | None,
        Field(
            max_length=MAX_VALUES,
            description=", ".join(INTERCONNECTS) + ": the offer must have all those given (where published).",
        ),
    ] = None
    max_age_s: Annotated[
        float | None,
        Field(
            gt=0, le=1e9, allow_inf_nan=False, description="Seconds: the offer's data (last_updated) at most this old."
        ),
    ] = None


class WeightParams(Schema):
    w_price: Annotated[
        Weight, Field(description=f"TOPSIS weight of a low price ({ranking.DEFAULT_WEIGHTS['price']}).")
    ] = None
    w_performance: Annotated[Weight, Field(description="Weight of FP16 TFLOPS x GPUs.")] = None
    w_memory: Annotated[Weight, Field(description="Weight of total GPU memory.")] = None
    w_availability: Annotated[Weight, Field(description="Weight of availability.")] = None


class ListParams(OfferFilterParams, WeightParams):
    sort: Annotated[
        str, Field(max_length=32, description="; ".join(f"{name}: {text}" for name, text in SORTS.items()))
    ] = "price"
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT, description=f"Page size, 1 to {MAX_LIMIT}.")] = DEFAULT_LIMIT
    cursor: Annotated[str | None, Field(max_length=4096, description="next_cursor from the previous page.")] = None


class RankingParams(OfferFilterParams, WeightParams):
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT, description="How many of the best to return.")] = DEFAULT_LIMIT


def field_names(schema: type[Schema]) -> frozenset[str]:
    return frozenset(schema.model_fields)


def reject_unknown(names: Iterable[str], allowed: frozenset[str]) -> None:
    for name in names:
        if name not in allowed:
            raise invalid(name, f"unknown parameter {name!r}; accepted: {', '.join(sorted(allowed))}")


def split(values: list[str] | None) -> list[str]:
    """Accept both repeated parameters and comma-separated lists."""
    return [part.strip() for value in values or () for part in value.split(",") if part.strip()]


def gpu_types(values: list[str] | None) -> frozenset[str]:
    resolved = set()
    for value in split(values):
        spec = get(value)
        gpu_type = spec.name if spec is not None else resolve(value).gpu_type
        if gpu_type is None:
            raise invalid("gpu", f"unknown GPU {value!r}; see GET /api/v2/gpus or use a name like 'H100' or 'RTX 4090'")
        resolved.add(gpu_type)
    return frozenset(resolved)


def _choices(name: str, values: list[str] | None, allowed: Iterable[str], *, lower: bool = True) -> frozenset[str]:
    allowed = sorted(allowed)
    wanted = {value.lower() if lower else value for value in split(values)}
    for value in sorted(wanted):
        if value not in allowed:
            raise invalid(name, f"unknown {name} {value!r}; one of: {', '.join(allowed) or 'none yet'}")
    return frozenset(wanted)


def filters(params: OfferFilterParams, known_providers: Iterable[str]) -> OfferFilters:
    ranges = []
    for prefix, column in RANGES.items():
        low, high = getattr(params, f"min_{prefix}", None), getattr(params, f"max_{prefix}", None)
        if low is not None and high is not None and low > high:
            raise invalid(f"min_{prefix}", f"min_{prefix} is greater than max_{prefix}")
        if low is not None or high is not None:
            ranges.append((column, None if low is None else float(low), None if high is None else float(high)))
    return OfferFilters(
        providers=_choices("provider", params.provider, known_providers, lower=False),
        gpu_types=gpu_types(params.gpu),
        vendors=_choices("vendor", params.vendor, gpus.VENDORS),
        regions=frozenset(split(params.region)),
        region_prefixes=frozenset(split(params.region_prefix)),
        continents=_choices("continent", params.continent, CONTINENTS),
        availability=_choices("availability", params.availability, (a.value for a in Availability)),
        cpu_archs=_choices("cpu_arch", params.cpu_arch, CPU_ARCHS),
        compliance=frozenset(split(params.compliance)),
        interconnect=_choices("interconnect", params.interconnect, INTERCONNECTS),
        max_age_s=params.max_age_s,
        spot=params.spot,
        resold=params.resold,
        ranges=tuple(ranges),
    )


def weights(params: WeightParams) -> dict[str, float]:
    """TOPSIS weights, defaulting each one left out; not all zero (they are normalised to sum 1)."""
    given = {name: getattr(params, f"w_{name}") for name in ranking.DEFAULT_WEIGHTS}
    chosen = {
        name: default if given[name] is None else given[name] for name, default in ranking.DEFAULT_WEIGHTS.items()
    }
    if not any(chosen.values()):
        raise invalid("w_price", "at least one weight must be above zero")
    return chosen


def list_query(params: ListParams, known_providers: Iterable[str]) -> OfferQuery:
    if params.sort not in SORTS:
        raise invalid("sort", f"unknown sort {params.sort!r}; one of: {', '.join(SORTS)}")
    return OfferQuery(filters(params, known_providers), params.sort, weights(params), params.limit)
