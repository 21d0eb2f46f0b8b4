"""Turning the list endpoint's query parameters into an ``OfferQuery``, or a 422 naming the
parameter that is wrong."""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import Decimal

from gpubroker.core.gpus import get, resolve
from gpubroker.core.offer import Availability
from gpubroker.gateway.catalog.query import MAX_LIMIT, SORTS, OfferQuery
from gpubroker.gateway.errors import invalid

LIST_PARAMS = frozenset({"gpu", "provider", "min_price", "max_price", "availability", "sort", "limit", "cursor"})
RANKING_PARAMS = frozenset(
    {"gpu", "provider", "min_price", "max_price", "availability", "limit"}
    | {"w_price", "w_performance", "w_memory", "w_availability"}
)


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


def providers(values: list[str] | None, known: Iterable[str]) -> frozenset[str]:
    wanted = frozenset(split(values))
    unknown = sorted(wanted - set(known))
    if unknown:
        raise invalid("provider", f"unknown provider {unknown[0]!r}; known: {', '.join(sorted(known)) or 'none yet'}")
    return wanted


def availability(values: list[str] | None) -> frozenset[Availability]:
    result = set()
    for value in split(values):
        try:
            result.add(Availability(value.lower()))
        except ValueError:
            choices = ", ".join(a.value for a in Availability)
            raise invalid("availability", f"unknown availability {value!r}; one of: {choices}") from None
    return frozenset(result)


def build_query(
    *,
    gpu: list[str] | None,
    provider: list[str] | None,
    known_providers: Iterable[str],
    min_price: Decimal | None,
    max_price: Decimal | None,
    availability_values: list[str] | None,
    sort: str,
    limit: int,
) -> OfferQuery:
    for name, price in (("min_price", min_price), ("max_price", max_price)):
        if price is not None and (not price.is_finite() or price < 0):
            raise invalid(name, f"{name} must be a non-negative number of USD per hour")
    if min_price is not None and max_price is not None and min_price > max_price:
        raise invalid("min_price", "min_price is greater than max_price")
    if sort not in SORTS:
        raise invalid("sort", f"unknown sort {sort!r}; one of: {', '.join(SORTS)}")
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid("limit", f"limit must be between 1 and {MAX_LIMIT}")
    return OfferQuery(
        gpu_types=gpu_types(gpu),
        providers=providers(provider, known_providers),
        min_price=min_price,
        max_price=max_price,
        availability=availability(availability_values),
        sort=sort,  # type: ignore[arg-type]  # checked against SORTS above
        limit=limit,
    )


def weights(**given: float) -> dict[str, float]:
    """TOPSIS weights: each finite and >= 0, not all zero (they are normalised to sum to 1)."""
    for name, value in given.items():
        if not math.isfinite(value) or value < 0:
            raise invalid(f"w_{name}", f"w_{name} must be a non-negative number")
    if not any(given.values()):
        raise invalid("w_price", "at least one weight must be above zero")
    return given
