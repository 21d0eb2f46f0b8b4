"""Hyperbolic: the GPU marketplace's machines (``POST /v1/marketplace`` with ``{"filters": {}}``).

Each record is one supplier machine ("node") with its GPUs, free-GPU count and a price per GPU
per hour in US cents (``pricing.price.amount`` with ``period: "hourly"``). An offer is the whole
machine: ``gpu_count`` is ``gpus_total`` and the price is per-GPU x that count; the free GPUs
(``gpus_total - gpus_reserved``) are the availability signal, since a renter may take any number
of them. GPU memory is in MiB. Listing needs no key; one is sent as a bearer token when
configured. Facts and sources are in the README beside this package.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from importlib.resources import files
from typing import Any

from gpubroker.core import units
from gpubroker.core.adapter import Call, Page, PollContext, ProviderAdapter, Response
from gpubroker.core.offer import Availability, Offer
from gpubroker.core.provider import Credentials, CredentialSpec, ProviderInfo

PATH = "/v1/marketplace"
QUERY: dict[str, Any] = {"filters": {}}
READY = "node_ready"
HOURLY = "hourly"


class HyperbolicAdapter(ProviderAdapter):
    info = ProviderInfo(
        name="hyperbolic",
        display_name="Hyperbolic",
        api_base_url="https://api.hyperbolic.xyz",
        homepage="https://hyperbolic.ai",
        credentials=(
            CredentialSpec(
                name="api_key",
                required=False,
                description="Hyperbolic API key (optional: the marketplace listing is public).",
            ),
        ),
        poll_interval_s=60,
        concurrency_limit=1,
        rate_limit_per_minute=60,  # the Basic tier's documented 60 requests per minute
        request_timeout_s=15,
    )
    recordings = files(__package__).joinpath("recordings")
    schemas = files(__package__).joinpath("schemas")

    def calls(self, ctx: PollContext) -> Iterable[Call]:
        return [Call(PATH, method="POST", json=QUERY)]

    def authorize(self, call: Call, credentials: Credentials) -> Call:
        if "api_key" not in credentials:
            return call
        return replace(call, headers={**call.headers, "Authorization": f"Bearer {credentials['api_key']}"})

    def parse(self, response: Response, ctx: PollContext) -> Page:
        instances = response.json()["instances"]
        if not isinstance(instances, list):
            raise ValueError("'instances' is not a list")
        return Page(records=instances)

    def normalise(self, record: Mapping[str, Any], ctx: PollContext) -> Offer | None:
        hardware = record["hardware"]
        gpus = hardware.get("gpus") or []
        if not gpus:
            return None  # a CPU-only machine
        model = str(gpus[0]["model"])
        gpu_count = int(record.get("gpus_total") or len(gpus))
        if gpu_count < 1:
            return None
        cluster = record.get("cluster_name")
        return ctx.offer(
            provider_offer_id=record["id"],
            name=f"{gpu_count}x {model}" + (f" ({cluster})" if cluster else ""),
            gpu_name=model,
            gpu_count=gpu_count,
            gpu_memory_gb=None if gpus[0].get("ram") is None else units.mib_to_gb(gpus[0]["ram"]),
            price_per_hour=units.per_instance(price_per_gpu(record["pricing"]), gpu_count),
            vcpus=_first(hardware.get("cpus"), "virtual_cores"),
            ram_gb=_first(hardware.get("ram"), "capacity"),
            storage_gb=_first(hardware.get("storage"), "capacity"),
            availability_status=availability(record, gpu_count),
            region=str((record.get("location") or {}).get("region") or "unknown"),
        )


def price_per_gpu(pricing: Mapping[str, Any]) -> Decimal:
    """``pricing.price.amount`` is US cents per GPU per hour; other periods are refused."""
    price = pricing["price"]
    period = str(price.get("period", HOURLY)).lower()
    if period != HOURLY:
        raise ValueError(f"unsupported pricing period {period!r}")
    return units.dollars_from_cents(price["amount"])


def availability(record: Mapping[str, Any], gpu_count: int) -> Availability:
    """A ready, unreserved machine is as available as its free GPUs (0 none, 1-2 limited)."""
    if record.get("reserved") or record.get("status") != READY:
        return Availability.UNAVAILABLE
    free = gpu_count - int(record.get("gpus_reserved") or 0)
    return units.availability(max(free, 0))


def _first(items: Sequence[Mapping[str, Any]] | None, key: str) -> float | None:
    """The figure of the first listed CPU/RAM/storage entry (Hyperbolic lists one per kind)."""
    if not items or items[0].get(key) is None:
        return None
    return float(units.decimal(items[0][key]))
