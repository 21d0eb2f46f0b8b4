"""DigitalOcean: GPU Droplet sizes from ``GET /v2/sizes``, one offer per size and region.

The sizes list is the account's view of every Droplet plan with ``price_hourly`` (USD for the
whole Droplet), ``memory`` (MB), ``disk`` (GB), ``regions`` (where the size can be created now)
and ``available``; GPU plans (slugs ``gpu-*``) add ``gpu_info`` (count, model such as
``nvidia_h100``, and ``vram``, the Droplet's total GPU memory). It is paged with ``page`` and
``per_page`` (at most 200) and ``links.pages.next`` gives the next page as a full URL. A
personal access token goes in ``Authorization: Bearer``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from decimal import Decimal
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from gpubroker.core import units
from gpubroker.core.adapter import Call, Page, PollContext, ProviderAdapter, Response
from gpubroker.core.offer import Offer
from gpubroker.core.provider import Credentials, CredentialSpec, ProviderInfo

PATH = "/v2/sizes"
PER_PAGE = "200"  # the documented maximum
REGION_KEY = "_gpubroker_region"  # added by parse: the region this copy of a size stands for

# Region slug -> ISO country, for the data centres DigitalOcean lists GPU sizes in.
COUNTRIES = {
    "nyc1": "US", "nyc2": "US", "nyc3": "US", "sfo1": "US", "sfo2": "US", "sfo3": "US", "atl1": "US",
    "ric1": "US", "tor1": "CA", "ams2": "NL", "ams3": "NL", "fra1": "DE", "lon1": "GB", "sgp1": "SG",
    "blr1": "IN", "syd1": "AU",
}  # fmt: skip


class DigitaloceanAdapter(ProviderAdapter):
    info = ProviderInfo(
        name="digitalocean",
        display_name="DigitalOcean",
        api_base_url="https://api.digitalocean.com",
        homepage="https://www.digitalocean.com/products/gpu-droplets",
        credentials=(
            CredentialSpec(name="api_token", description="DigitalOcean personal access token (scope sizes:read)."),
        ),
        poll_interval_s=60,
        concurrency_limit=2,
        rate_limit_per_minute=250,
        request_timeout_s=10,
    )
    recordings = files(__package__).joinpath("recordings")
    schemas = files(__package__).joinpath("schemas")

    def calls(self, ctx: PollContext) -> Iterable[Call]:
        return [Call(PATH, params={"page": "1", "per_page": PER_PAGE})]

    def authorize(self, call: Call, credentials: Credentials) -> Call:
        return replace(call, headers={**call.headers, "Authorization": f"Bearer {credentials['api_token']}"})

    def parse(self, response: Response, ctx: PollContext) -> Page:
        body = response.json()
        sizes = body["sizes"]
        if not isinstance(sizes, list):
            raise ValueError("'sizes' is not a list")
        return Page(records=[r for size in sizes for r in _per_region(size)], follow=_next_page(body))

    def normalise(self, record: Mapping[str, Any], ctx: PollContext) -> Offer | None:
        gpu = record.get("gpu_info")
        region = record.get(REGION_KEY)
        if not gpu or not region:
            return None  # a CPU plan, or a GPU plan no region offers
        slug = str(record["slug"])
        count = int(gpu["count"])
        return ctx.offer(
            provider_offer_id=f"{slug}/{region}",
            name=slug,
            gpu_name=str(gpu["model"]),
            gpu_count=count,
            gpu_memory_gb=per_gpu_memory_gb(gpu.get("vram"), count),
            price_per_hour=units.decimal(record["price_hourly"]),
            spot=slug.endswith("-spot"),
            vcpus=float(record["vcpus"]),
            ram_gb=units.mib_to_gb(record["memory"]),
            storage_gb=_storage_gb(record),
            cpu_arch="x86_64",
            availability_status=units.availability(bool(record["available"])),
            region=str(region),
            country=COUNTRIES.get(str(region)),
        )


def _per_region(size: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A GPU size becomes one record per region it can be created in; other sizes pass through."""
    if not size.get("gpu_info"):
        return [size]
    return [{**size, REGION_KEY: region} for region in size.get("regions") or []] or [size]


def _next_page(body: Mapping[str, Any]) -> list[Call]:
    """The call for ``links.pages.next`` (an absolute URL on the same host), if there is one."""
    url = ((body.get("links") or {}).get("pages") or {}).get("next")
    if not url:
        return []
    parts = urlsplit(str(url))
    return [Call(parts.path, params=dict(parse_qsl(parts.query)))]


def per_gpu_memory_gb(vram: object, count: int) -> float | None:
    """``vram`` is the Droplet's total GPU memory (``gpu-h100x8-640gb`` reports 640 GiB)."""
    if not isinstance(vram, Mapping) or vram.get("amount") is None:
        return None
    amount, unit = float(vram["amount"]), str(vram.get("unit", "gib")).lower()
    total = units.mib_to_gb(amount) if unit == "mib" else amount
    if unit not in ("gib", "gb", "mib"):
        raise ValueError(f"unknown VRAM unit {unit!r}")
    return round(total / count, 1)


def _storage_gb(record: Mapping[str, Any]) -> float:
    """Boot disk plus any scratch disk, from ``disk_info`` when given (sizes in GiB)."""
    disks = record.get("disk_info") or []
    if disks:
        return float(sum(Decimal(str(disk["size"]["amount"])) for disk in disks))
    return float(record["disk"])
