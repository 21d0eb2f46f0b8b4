"""Seeweb Cloud Server GPU: ECS plans with a GPU, hourly EUR prices, and where each can be created now.

Two ECS API v2 answers make an offer. ``GET /ecs/v2/plans`` lists every plan with its hardware
(``cpu``, ``ram`` in MiB, ``disk`` in GB, ``gpu`` count, ``gpu_label``), ``hourly_price`` (EUR,
whole server) and ``available_regions`` (where the plan is sold). ``GET /ecs/v2/plans/availables``
lists only the plans that can be created right now, with ``region_availables``: that is the
stock signal. The runtime normalises one record at a time, so the two calls are chained: the
plans answer is read first and its GPU plans travel in the follow-up call's ``carry``; records
(one per GPU plan and region) leave ``parse`` with the second answer. Facts and sources are in
this plugin's README.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from importlib.resources import files
from typing import Any

from gpubroker.core import fx, units
from gpubroker.core.adapter import Call, Page, PollContext, ProviderAdapter, Response
from gpubroker.core.gpus import resolve
from gpubroker.core.offer import Availability, Offer
from gpubroker.core.provider import Credentials, CredentialSpec, ProviderInfo

PLANS = "/ecs/v2/plans"
AVAILABLE_PLANS = "/ecs/v2/plans/availables"
CURRENCY = "EUR"  # Seeweb bills in euro; the API does not name the currency
NOT_GPUS = ("tenstorrent",)
"""Accelerators Seeweb rents that the GPU catalogue does not model (AI cards, not GPUs)."""


class SeewebAdapter(ProviderAdapter):
    info = ProviderInfo(
        name="seeweb",
        display_name="Seeweb",
        api_base_url="https://api.seeweb.it",
        homepage="https://www.seeweb.it/en/products/cloud-server-gpu",
        credentials=(CredentialSpec(name="api_token", description="Seeweb ECS API token, sent as X-APITOKEN."),),
        poll_interval_s=300,
        concurrency_limit=1,
        rate_limit_per_minute=30,
        request_timeout_s=15,
    )
    recordings = files(__package__).joinpath("recordings")
    schemas = files(__package__).joinpath("schemas")

    def calls(self, ctx: PollContext) -> Iterable[Call]:
        return [Call(PLANS, tag="plans")]

    def authorize(self, call: Call, credentials: Credentials) -> Call:
        return replace(call, headers={**call.headers, "X-APITOKEN": credentials["api_token"]})

    def parse(self, response: Response, ctx: PollContext) -> Page:
        plans = response.json()["plans"]
        if not isinstance(plans, list):
            raise ValueError("'plans' is not a list")
        call = response.call
        if call.path.rstrip("/") == PLANS:
            gpu_plans = tuple(plan for plan in plans if _gpus(plan) >= 1)
            if not gpu_plans:
                return Page()
            # The second call carries the GPU plans the first call returned.
            return Page(follow=[Call(AVAILABLE_PLANS, tag="plans", carry={"gpu_plans": gpu_plans})])
        if "gpu_plans" not in call.carry:
            raise ValueError(f"{call.path} was not sent after {PLANS}")
        creatable = {
            (str(plan["name"]), str(region["region"]))
            for plan in plans
            for region in plan.get("region_availables") or []
        }
        return Page(records=[record for plan in call.carry["gpu_plans"] for record in _per_region(plan, creatable)])

    def normalise(self, record: Mapping[str, Any], ctx: PollContext) -> Offer | None:
        gpu_count = _gpus(record)
        label = str(record.get("gpu_label") or "")
        if gpu_count < 1 or not label or not record.get("available", True):
            return None  # CPU plans, and plans Seeweb no longer sells
        if resolve(label).gpu_type is None and any(word in label.lower() for word in NOT_GPUS):
            return None
        region = str(record["location"])
        tags = ("windows",) if record.get("windows") else ()
        return ctx.offer(
            provider_offer_id=f"{region}/{record['name']}",
            name=str(record["name"]),
            gpu_name=label,
            gpu_count=gpu_count,
            price_per_hour=fx.to_usd(units.decimal(record["hourly_price"]), CURRENCY),
            vcpus=float(record["cpu"]),
            ram_gb=units.mib_to_gb(float(record["ram"])),
            storage_gb=float(record["disk"]),
            cpu_arch="x86_64",
            availability_status=Availability.AVAILABLE if record["creatable"] else Availability.UNAVAILABLE,
            region=region,
            country=country_of(region),
            compliance_tags=tags,
        )


def country_of(location: str) -> str | None:
    """Seeweb locations start with the country: ``it-fr2`` (Frosinone), ``ch-lug1`` (Lugano)."""
    code = location.split("-", 1)[0]
    return code.upper() if len(code) == 2 and code.isalpha() else None


def _per_region(plan: Mapping[str, Any], creatable: set[tuple[str, str]]) -> list[dict[str, Any]]:
    """One record per region the plan is sold in, marked with whether it can be created there now."""
    name = str(plan["name"])
    regions = [str(region["location"]) for region in plan.get("available_regions") or []]
    return [{**plan, "location": where, "creatable": (name, where) in creatable} for where in dict.fromkeys(regions)]


def _gpus(plan: Mapping[str, Any]) -> int:
    """``gpu`` is a string in the API (``"4"``); absent or ``null`` means none."""
    value = plan.get("gpu")
    return 0 if value in (None, "") else int(value)
