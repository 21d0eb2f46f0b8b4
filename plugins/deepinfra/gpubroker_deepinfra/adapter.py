"""DeepInfra: GPU configurations rentable as dedicated containers (``GET /v1/containers/gpu_availability``).

DeepInfra sells inference per token, and it also rents whole GPUs ("GPU instances", run as
containers). Only the rental side has an hourly price: the availability endpoint answers
``{"gpus": [{"gpu_config", "usd_per_hour", "available", "recommended"}]}``, where
``gpu_config`` is the string a container is started with (``"8xB200-180GB"``) and
``usd_per_hour`` is that configuration's hourly price in US dollars. Token prices are not GPU
offers and are not read. Facts and sources are in the README beside this package.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from importlib.resources import files
from typing import Any

from gpubroker.core import units
from gpubroker.core.adapter import Call, Page, PollContext, ProviderAdapter, Response
from gpubroker.core.offer import Offer
from gpubroker.core.provider import Credentials, CredentialSpec, ProviderInfo

PATH = "/v1/containers/gpu_availability"
REGION = "unknown"  # the endpoint names no region or data centre

# "8xB200-180GB" or "B200-180GB" (one GPU); the count prefix is optional.
_CONFIG = re.compile(r"^\s*(?:(\d{1,2})\s*[xX]\s*)?(\S.*?)\s*$")


class DeepInfraAdapter(ProviderAdapter):
    info = ProviderInfo(
        name="deepinfra",
        display_name="DeepInfra",
        api_base_url="https://api.deepinfra.com",
        homepage="https://deepinfra.com",
        credentials=(CredentialSpec(name="api_key", description="DeepInfra API token, sent as a bearer token."),),
        poll_interval_s=60,
        concurrency_limit=1,
        rate_limit_per_minute=60,  # DeepInfra documents inference limits only; one call per poll
    )
    recordings = files(__package__).joinpath("recordings")
    schemas = files(__package__).joinpath("schemas")

    def calls(self, ctx: PollContext) -> Iterable[Call]:
        return [Call(PATH)]

    def authorize(self, call: Call, credentials: Credentials) -> Call:
        return replace(call, headers={**call.headers, "Authorization": f"Bearer {credentials['api_key']}"})

    def parse(self, response: Response, ctx: PollContext) -> Page:
        gpus = response.json()["gpus"]
        if not isinstance(gpus, list):
            raise ValueError("'gpus' is not a list")
        return Page(records=gpus)

    def normalise(self, record: Mapping[str, Any], ctx: PollContext) -> Offer | None:
        config = str(record["gpu_config"])
        gpu_count, gpu_name = split_config(config)
        price = units.decimal(record["usd_per_hour"])
        if price <= 0:
            raise ValueError(f"{config}: usd_per_hour {price} is not a price")
        available = record["available"]
        if not isinstance(available, bool):
            raise ValueError(f"{config}: 'available' is not a boolean: {available!r}")
        return ctx.offer(
            provider_offer_id=config,
            name=f"GPU instance {config}",
            gpu_name=gpu_name,
            gpu_count=gpu_count,
            price_per_hour=price,  # the configuration's price, already for all of its GPUs
            availability_status=units.availability(available),
            region=REGION,
        )


def split_config(config: str) -> tuple[int, str]:
    """``"8xB200-180GB"`` -> ``(8, "B200-180GB")``; no count prefix means one GPU."""
    match = _CONFIG.match(config)
    if match is None:
        raise ValueError(f"unreadable gpu_config {config!r}")
    count = int(match[1]) if match[1] else 1
    if count < 1:
        raise ValueError(f"gpu_config {config!r} names {count} GPUs")
    return count, match[2]
