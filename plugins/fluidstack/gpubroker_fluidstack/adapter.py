"""FluidStack: the GPU configurations that can be deployed now (``GET /list_available_configurations``).

The answer is a list of configurations, one per GPU type: ``gpu_type`` (``H100_SXM5_80GB``), the
GPU counts an instance can have right now (``gpu_counts``), the price per GPU-hour as a decimal
string (``price_per_gpu_hr``), the regions it can be deployed in and an estimated provisioning
time. FluidStack sizes CPU, RAM and NVMe from the GPU count, so the per-GPU price is the whole
instance's price divided by its GPUs; one offer is made per GPU type, count and region.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from importlib.resources import files
from typing import Any

from gpubroker.core import units
from gpubroker.core.adapter import Call, Page, PollContext, ProviderAdapter, Response
from gpubroker.core.offer import Availability, Offer
from gpubroker.core.provider import Credentials, CredentialSpec, ProviderInfo

CONFIGURATIONS_PATH = "/list_available_configurations"
_MEMORY_SUFFIX = re.compile(r"_(\d+)GB$", re.IGNORECASE)

_REGION_COUNTRIES = {
    "CANADA": "CA", "FINLAND": "FI", "FRANCE": "FR", "GERMANY": "DE", "ICELAND": "IS",
    "NETHERLANDS": "NL", "NORWAY": "NO", "SWEDEN": "SE", "UK": "GB", "UNITED_KINGDOM": "GB",
    "US": "US", "USA": "US", "UNITED_STATES": "US",
}  # fmt: skip
"""FluidStack names regions by country (``NORWAY``, ``CANADA``); other names get no country."""


class FluidStackAdapter(ProviderAdapter):
    info = ProviderInfo(
        name="fluidstack",
        display_name="FluidStack",
        api_base_url="https://platform.fluidstack.io",
        homepage="https://www.fluidstack.io",
        credentials=(CredentialSpec(name="api_key", description="FluidStack platform API key (api-key header)."),),
        poll_interval_s=60,
        concurrency_limit=1,
        rate_limit_per_minute=60,
        request_timeout_s=15,
    )
    recordings = files(__package__).joinpath("recordings")
    schemas = files(__package__).joinpath("schemas")

    def calls(self, ctx: PollContext) -> Iterable[Call]:
        return [Call(CONFIGURATIONS_PATH, tag="configurations")]

    def authorize(self, call: Call, credentials: Credentials) -> Call:
        return replace(call, headers={**call.headers, "api-key": credentials["api_key"]})

    def parse(self, response: Response, ctx: PollContext) -> Page:
        """One record per configuration, GPU count and region."""
        configurations = response.json()
        if not isinstance(configurations, list):
            raise ValueError("the configurations answer is not a list")
        records: list[Mapping[str, Any]] = [
            {"configuration": configuration, "gpu_count": count, "region": region}
            for configuration in configurations
            for count in configuration.get("gpu_counts") or []
            for region in configuration.get("regions") or []
        ]
        return Page(records=records)

    def normalise(self, record: Mapping[str, Any], ctx: PollContext) -> Offer | None:
        configuration = record["configuration"]
        gpu_type = str(configuration["gpu_type"])
        if gpu_type.upper() in ("", "NO GPU", "NO_GPU", "CPU"):
            return None
        gpu_count = int(record["gpu_count"])
        region = str(record["region"])
        return ctx.offer(
            provider_offer_id=f"{gpu_type}::{gpu_count}::{region}",
            name=f"{gpu_count}x {gpu_type}",
            gpu_name=gpu_type,
            gpu_count=gpu_count,
            gpu_memory_gb=memory_gb(gpu_type),
            price_per_hour=units.per_instance(units.decimal(configuration["price_per_gpu_hr"]), gpu_count),
            availability_status=Availability.AVAILABLE,
            region=region,
            country=_REGION_COUNTRIES.get(region.upper()),
        )


def memory_gb(gpu_type: str) -> float | None:
    """``H100_SXM5_80GB`` -> 80.0: FluidStack states each GPU's memory at the end of its type."""
    match = _MEMORY_SUFFIX.search(gpu_type)
    return float(match.group(1)) if match else None
