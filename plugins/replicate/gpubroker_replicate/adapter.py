"""Replicate: the hardware SKUs models and deployments can run on (``GET /v1/hardware``).

The API answers with a bare JSON array of ``{"name", "sku"}`` objects and nothing else: no price,
no region, no stock. Replicate's per-second prices exist only on its pricing web page, so every
offer has ``price_per_hour=None`` (never estimated). A listed SKU is hardware Replicate offers,
so it is reported available. Facts and sources are in the README beside this package.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from importlib.resources import files
from typing import Any

from gpubroker.core.adapter import Call, Page, PollContext, ProviderAdapter, Response
from gpubroker.core.offer import Availability, Offer
from gpubroker.core.provider import Credentials, CredentialSpec, ProviderInfo

PATH = "/v1/hardware"
REGION = "unknown"  # Replicate publishes no region for its hardware

_NAME_COUNT = re.compile(r"^\s*(\d{1,2})\s*x\s+", re.IGNORECASE)  # "2x Nvidia A100 (80GB) GPU"
_SKU_COUNT = re.compile(r"(?:^|-)(\d{1,2})x(?:-|$)")  # "gpu-a100-large-2x", "gpu-2x-l40s"


class ReplicateAdapter(ProviderAdapter):
    info = ProviderInfo(
        name="replicate",
        display_name="Replicate",
        api_base_url="https://api.replicate.com",
        homepage="https://replicate.com",
        credentials=(CredentialSpec(name="api_key", description="Replicate API token, sent as a bearer token."),),
        poll_interval_s=3600,  # the SKU list changes when Replicate adds hardware, not minute to minute
        concurrency_limit=1,
        rate_limit_per_minute=3000,  # documented limit for every endpoint except creating predictions
    )
    recordings = files(__package__).joinpath("recordings")
    schemas = files(__package__).joinpath("schemas")

    def calls(self, ctx: PollContext) -> Iterable[Call]:
        return [Call(PATH)]

    def authorize(self, call: Call, credentials: Credentials) -> Call:
        return replace(call, headers={**call.headers, "Authorization": f"Bearer {credentials['api_key']}"})

    def parse(self, response: Response, ctx: PollContext) -> Page:
        body = response.json()
        if not isinstance(body, list):
            raise ValueError("the hardware list is not a JSON array")
        return Page(records=body)

    def normalise(self, record: Mapping[str, Any], ctx: PollContext) -> Offer | None:
        sku, name = str(record["sku"]), str(record["name"])
        if not sku.startswith("gpu-"):
            return None  # "cpu" and any other non-GPU hardware
        gpu_count = gpu_count_of(name, sku)
        return ctx.offer(
            provider_offer_id=sku,
            name=f"{name} ({sku})",
            gpu_name=_NAME_COUNT.sub("", name).strip(),
            gpu_count=gpu_count,
            price_per_hour=None,
            availability_status=Availability.AVAILABLE,
            region=REGION,
        )


def gpu_count_of(name: str, sku: str) -> int:
    """The GPU count the name states (``"4x Nvidia H100 GPU"``), else the SKU's, else one."""
    match = _NAME_COUNT.match(name) or _SKU_COUNT.search(sku)
    count = int(match[1]) if match else 1
    if count < 1:
        raise ValueError(f"{sku}: GPU count {count}")
    return count
