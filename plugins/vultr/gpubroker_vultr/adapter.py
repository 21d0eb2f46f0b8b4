"""Vultr: Cloud GPU plans (``GET /v2/plans?type=vcg``) and bare-metal GPU plans (``GET /v2/plans-metal``).

Both lists are Vultr's public price list, paged with a cursor (``meta.links.next``). A plan has a
monthly price and, for most plans, an hourly one (``hourly_cost``); the hourly price is used as
given and only a plan without one is converted from ``monthly_cost`` at 730 hours a month. A plan
lists the regions it can be deployed in now (``locations``): one offer per plan and region. GPU
counts and memory come from ``gpu_type``/``gpu_vram_gb`` for Cloud GPU plans and from the plan id
for bare metal (see ``gpus.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from decimal import Decimal
from importlib.resources import files
from typing import Any

from gpubroker.core import units
from gpubroker.core.adapter import Call, Page, PollContext, ProviderAdapter, Response
from gpubroker.core.offer import Availability, Offer
from gpubroker.core.provider import Credentials, CredentialSpec, ProviderInfo
from gpubroker_vultr.gpus import ARM_CARDS, CARD_MEMORY_GB, card, cloud_gpu, metal_gpu
from gpubroker_vultr.regions import COUNTRIES

PLANS_PATH = "/v2/plans"
METAL_PATH = "/v2/plans-metal"
PER_PAGE = "500"
"""The largest page Vultr serves (the default is 100)."""
TAG = "plans"
"""One tag for both lists and their pages: the worker then sends them one after another, in order,
so a poll's offers come out in the same order every time (and 3 calls an hour need no more)."""


class VultrAdapter(ProviderAdapter):
    info = ProviderInfo(
        name="vultr",
        display_name="Vultr",
        api_base_url="https://api.vultr.com",
        homepage="https://www.vultr.com",
        credentials=(
            CredentialSpec(
                name="api_key", required=False, description="Vultr API key (optional: plan lists are public)."
            ),
        ),
        poll_interval_s=3600,
        concurrency_limit=1,
        rate_limit_per_minute=1800,
        request_timeout_s=15,
    )
    recordings = files(__package__).joinpath("recordings")
    schemas = files(__package__).joinpath("schemas")

    def calls(self, ctx: PollContext) -> Iterable[Call]:
        return [
            Call(PLANS_PATH, params={"type": "vcg", "per_page": PER_PAGE}, tag=TAG),
            Call(METAL_PATH, params={"per_page": PER_PAGE}, tag=TAG),
        ]

    def authorize(self, call: Call, credentials: Credentials) -> Call:
        if "api_key" not in credentials:
            return call
        return replace(call, headers={**call.headers, "Authorization": f"Bearer {credentials['api_key']}"})

    def parse(self, response: Response, ctx: PollContext) -> Page:
        """One record per plan and region; the next page when ``meta.links.next`` is set."""
        call = response.call
        kind = "metal" if call.path == METAL_PATH else "vcg"
        body = response.json()
        plans = body["plans_metal" if kind == "metal" else "plans"]
        if not isinstance(plans, list):
            raise ValueError("the plan list is not a list")
        records: list[Mapping[str, Any]] = [
            {"kind": kind, "plan": plan, "location": location}
            for plan in plans
            for location in plan.get("locations") or []
        ]
        cursor = ((body.get("meta") or {}).get("links") or {}).get("next")
        follow = [replace(call, params={**call.params, "cursor": str(cursor)}, headers={})] if cursor else []
        return Page(records=records, follow=follow)

    def normalise(self, record: Mapping[str, Any], ctx: PollContext) -> Offer | None:
        plan, location, kind = record["plan"], str(record["location"]), record["kind"]
        gpu = _gpu(plan, kind)
        if gpu is None:
            return None
        gpu_name, gpu_count, memory = gpu
        vcpus = plan.get("vcpu_count") if kind == "vcg" else plan.get("cpu_threads") or plan.get("cpu_count")
        return ctx.offer(
            provider_offer_id=f"{plan['id']}@{location}",
            name=str(plan["id"]),
            gpu_name=gpu_name,
            gpu_count=gpu_count,
            gpu_memory_gb=memory,
            price_per_hour=hourly_price(plan),
            vcpus=vcpus,
            ram_gb=units.mib_to_gb(plan["ram"]) if plan.get("ram") is not None else None,
            storage_gb=_storage(plan),
            cpu_arch="arm64" if card(gpu_name) in ARM_CARDS else None,
            availability_status=Availability.AVAILABLE,
            region=location,
            country=COUNTRIES.get(location),
        )


def hourly_price(plan: Mapping[str, Any]) -> Decimal:
    """``hourly_cost`` when Vultr gives one; otherwise ``monthly_cost`` over 730 hours."""
    hourly = plan.get("hourly_cost")
    if hourly not in (None, "", 0):
        price = units.decimal(hourly)
    else:
        price = units.monthly_to_hourly(units.decimal(plan["monthly_cost"]))
    if price <= 0:
        raise ValueError(f"plan {plan.get('id')!r} has no positive price")
    return price


def _gpu(plan: Mapping[str, Any], kind: str) -> tuple[str, int, float | None] | None:
    """(GPU name as Vultr writes it, count, memory of one GPU) or ``None`` for a CPU-only plan."""
    gpu_type = plan.get("gpu_type")
    if gpu_type and plan.get("gpu_vram_gb"):
        count, memory = cloud_gpu(str(gpu_type), float(plan["gpu_vram_gb"]))
        return str(gpu_type), count, memory
    if kind == "vcg":
        raise KeyError(f"Cloud GPU plan {plan.get('id')!r} has no gpu_type/gpu_vram_gb")
    parsed = metal_gpu(str(plan["id"]))
    if parsed is None:
        return None
    name, count = parsed
    memory = CARD_MEMORY_GB.get(card(name))
    return name, count, None if memory is None else float(memory)


def _storage(plan: Mapping[str, Any]) -> float | None:
    disk = plan.get("disk")
    if not isinstance(disk, int | float):
        return None
    return float(disk) * int(plan.get("disk_count") or 1)
