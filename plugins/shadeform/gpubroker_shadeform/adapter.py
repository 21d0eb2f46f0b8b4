"""Shadeform: a broker's catalogue of GPU instance types across many clouds (``GET /v1/instances/types``).

Shadeform resells capacity of other clouds (Lambda, Hyperstack, Crusoe, Massed Compute, ...):
every instance type names the underlying ``cloud``, which becomes the offer's ``resold_from``.
The whole-instance on-demand price is ``hourly_price`` in US cents; availability is one entry
per region and rental type (``on_demand`` or ``spot``), and a ``spot`` entry carries its own
price as a dollar string. One answer holds every type: there is no pagination. Facts and
sources are in the README beside this package.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from decimal import Decimal
from importlib.resources import files
from typing import Any

from gpubroker.core import units
from gpubroker.core.adapter import Call, Page, PollContext, ProviderAdapter, Response
from gpubroker.core.offer import Offer
from gpubroker.core.provider import Credentials, CredentialSpec, ProviderInfo

PATH = "/v1/instances/types"
ON_DEMAND = "on_demand"
SPOT = "spot"


class ShadeformAdapter(ProviderAdapter):
    info = ProviderInfo(
        name="shadeform",
        display_name="Shadeform",
        api_base_url="https://api.shadeform.ai",
        homepage="https://www.shadeform.ai",
        credentials=(CredentialSpec(name="api_key", description="Shadeform API key, sent as X-API-KEY."),),
        poll_interval_s=60,
        concurrency_limit=1,
        rate_limit_per_minute=60,  # Shadeform documents no request quota; one call per poll is all we need
        request_timeout_s=20,  # the unfiltered catalogue is one large answer
    )
    recordings = files(__package__).joinpath("recordings")
    schemas = files(__package__).joinpath("schemas")

    def calls(self, ctx: PollContext) -> Iterable[Call]:
        # No filters: unavailable types are listed too, so they can be shown as unavailable.
        return [Call(PATH)]

    def authorize(self, call: Call, credentials: Credentials) -> Call:
        return replace(call, headers={**call.headers, "X-API-KEY": credentials["api_key"]})

    def parse(self, response: Response, ctx: PollContext) -> Page:
        types = response.json()["instance_types"]
        if not isinstance(types, list):
            raise ValueError("'instance_types' is not a list")
        return Page(records=[record for item in types for record in _per_availability(item)])

    def normalise(self, record: Mapping[str, Any], ctx: PollContext) -> Offer | None:
        item, entry = record["instance_type"], record["availability"]
        config = item["configuration"]
        gpu_count = int(config["num_gpus"])
        if gpu_count < 1:
            return None  # CPU-only type
        rental = str(entry.get("rental_type") or ON_DEMAND)
        if rental not in (ON_DEMAND, SPOT):
            raise ValueError(f"unknown rental_type {rental!r}")
        spot = rental == SPOT
        price = _spot_price(entry) if spot else units.dollars_from_cents(item["hourly_price"])
        cloud, shade_type, region = str(item["cloud"]), str(item["shade_instance_type"]), str(entry["region"])
        return ctx.offer(
            provider_offer_id=f"{cloud}:{shade_type}:{region}:{rental}",
            name=f"{shade_type} on {cloud} ({item['cloud_instance_type']})" + (" spot" if spot else ""),
            gpu_name=str(config["gpu_type"]),
            gpu_count=gpu_count,
            gpu_memory_gb=_number(config.get("vram_per_gpu_in_gb")),
            price_per_hour=price,
            spot=spot,
            spot_price=price if spot else None,
            vcpus=_number(config.get("vcpus")),
            ram_gb=_number(config.get("memory_in_gb")),
            storage_gb=_number(config.get("storage_in_gb")),
            availability_status=units.availability(_flag(entry["available"])),
            region=region,
            country=_country(entry.get("display_name")),
            resold_from=cloud,
        )


def _per_availability(item: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One record per (region, rental type) entry: each is separately rentable and priced."""
    entries = item.get("availability") or []
    if not isinstance(entries, list):
        raise ValueError("'availability' is not a list")
    return [{"instance_type": item, "availability": entry} for entry in entries]


def _spot_price(entry: Mapping[str, Any]) -> Decimal:
    """A spot entry's ``hourly_price``: dollars per hour for the whole instance, as a string."""
    if entry.get("hourly_price") is None:
        raise ValueError("spot availability entry without hourly_price")
    return units.decimal(entry["hourly_price"])


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"'available' is not a boolean: {value!r}")
    return value


def _country(display_name: object) -> str | None:
    """``"US, Wichita, KS"`` -> ``"US"``; Shadeform's display names start with the country code."""
    if not isinstance(display_name, str):
        return None
    head = display_name.split(",", 1)[0].strip()
    return head if len(head) == 2 and head.isascii() and head.isalpha() and head.isupper() else None


def _number(value: object) -> float | None:
    return None if value is None else float(units.decimal(value))
