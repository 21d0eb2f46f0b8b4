"""Crusoe Cloud: free capacity per instance type and location (``GET /v1alpha5/capacities``).

Crusoe publishes no price through any API or machine-readable file: prices are on its web pricing
page and in contracts. This plugin therefore lists what the API does give, the instance types
with free capacity and how many, with ``price_per_hour=None``.

``/capacities`` answers ``{"items": [{"type": "h100-80gb-sxm-ib.8x", "location":
"us-east1-a", "quantity": 3}, ...]}``. Crusoe's instance type names carry the GPU and its count
(``<gpu>-<memory>[-<form factor>][-ib].<count>x``), which is where the offers' GPUs come from;
CPU-only types (``c1a.*``, ``s1a.*``) give no offer. Requests are signed with HMAC-SHA256 (see
``signing.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from importlib.resources import files
from typing import Any

from gpubroker.core import units
from gpubroker.core.adapter import Call, Page, PollContext, ProviderAdapter, Response
from gpubroker.core.gpus import resolve
from gpubroker.core.offer import Offer
from gpubroker.core.provider import Credentials, CredentialSpec, ProviderInfo
from gpubroker_crusoe import signing

CAPACITIES_PATH = "/v1alpha5/capacities"
_COUNT = re.compile(r"^(\d+)x$")
_CPU_FAMILY = re.compile(r"^[cs]\d+[a-z]$")
_REGION_COUNTRIES = {
    "us-east1": "US", "us-northcentral1": "US", "us-southcentral1": "US", "us-west1": "US",
    "us-central1": "US", "ca-east1": "CA", "eu-iceland1": "IS", "eu-norway1": "NO",
}  # fmt: skip
_UNSIZED_MEMORY_GB = {"a100": 40.0}
"""Crusoe's plain ``a100`` types are A100 PCIe 40 GB cards (``a100-80gb`` states its size)."""


class CrusoeAdapter(ProviderAdapter):
    info = ProviderInfo(
        name="crusoe",
        display_name="Crusoe Cloud",
        api_base_url="https://api.crusoecloud.com",
        homepage="https://crusoe.ai/cloud",
        credentials=(
            CredentialSpec(name="access_key", description="Crusoe API access key id."),
            CredentialSpec(name="secret_key", description="Crusoe API secret key (base64url), used to sign requests."),
        ),
        poll_interval_s=60,
        concurrency_limit=1,
        rate_limit_per_minute=60,
        request_timeout_s=15,
    )
    recordings = files(__package__).joinpath("recordings")
    schemas = files(__package__).joinpath("schemas")

    def calls(self, ctx: PollContext) -> Iterable[Call]:
        return [Call(CAPACITIES_PATH, tag="capacities")]

    def authorize(self, call: Call, credentials: Credentials) -> Call:
        signed = signing.headers(
            credentials["access_key"],
            credentials["secret_key"],
            call.path,
            call.params,
            call.method,
            signing.timestamp(),
        )
        return replace(call, headers={**call.headers, **signed})

    def parse(self, response: Response, ctx: PollContext) -> Page:
        """One record per instance type and location, keeping the largest quantity reported.

        The reference marks an item's ``type`` optional; an item without one names no instance
        type to offer, so it is skipped.
        """
        items = response.json()["items"]
        if not isinstance(items, list):
            raise ValueError("'items' is not a list")
        best: dict[tuple[str, str], dict[str, Any]] = {}
        for item in items:
            if not item.get("type"):
                continue
            key = (str(item["type"]), str(item["location"]))
            if key not in best or int(item.get("quantity") or 0) > int(best[key].get("quantity") or 0):
                best[key] = dict(item)
        return Page(records=list(best.values()))

    def normalise(self, record: Mapping[str, Any], ctx: PollContext) -> Offer | None:
        instance_type, location = str(record["type"]), str(record["location"])
        parsed = gpu_of(instance_type)
        if parsed is None:
            return None
        gpu_name, gpu_count = parsed
        return ctx.offer(
            provider_offer_id=f"{instance_type}@{location}",
            name=instance_type,
            gpu_name=gpu_name,
            gpu_count=gpu_count,
            gpu_memory_gb=_UNSIZED_MEMORY_GB.get(gpu_name),
            price_per_hour=None,
            availability_status=units.availability(int(record.get("quantity") or 0)),
            region=location,
            country=country_of(location),
        )


def gpu_of(instance_type: str) -> tuple[str, int] | None:
    """``h100-80gb-sxm-ib.8x`` -> (``h100-80gb-sxm-ib``, 8); ``None`` for CPU-only types.

    A type name without a ``.<n>x`` size is malformed (``ValueError``).
    """
    family, _, size = instance_type.rpartition(".")
    match = _COUNT.match(size)
    if not family or match is None:
        raise ValueError(f"instance type {instance_type!r} has no '.<count>x' size")
    if _CPU_FAMILY.match(family) and resolve(family).gpu_type is None:
        return None
    return family, int(match.group(1))


def country_of(location: str) -> str | None:
    """``us-east1-a`` -> ``US``: the zone's region, then its country."""
    region = re.sub(r"-[a-z]$", "", location)
    if region in _REGION_COUNTRIES:
        return _REGION_COUNTRIES[region]
    return "US" if region.startswith("us-") else None
