"""Google Cloud: Compute Engine GPU machine types priced from the Cloud Billing Catalog API.

``GET /v1/services/6F81-5844-456A/skus?key=...&currencyCode=USD&pageSize=5000`` lists every
Compute Engine SKU, paged by ``pageToken``/``nextPageToken`` (empty on the last page). Google
bills a GPU machine in parts: the family's vCPU-hour, its GiB-hour of memory and the GPU-hour,
each a SKU per region (``serviceRegions``) and usage type (``OnDemand``, or ``Preemptible`` for
Spot). An offer is a whole machine type in one region, on-demand or Spot, priced as
vCPUs x core price + GB x RAM price + GPUs x GPU price from that region's SKUs (or GPUs x the
GPU-slice price for A4, whose slices hold their vCPUs and memory), with the machine types'
shapes from Google's documentation (``machines.py``). The parts are collected page by page in
the follow-up call's ``carry``; machine records leave ``parse`` with the last page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from decimal import Decimal
from importlib.resources import files
from typing import Any

from gpubroker.core import fx, units
from gpubroker.core.adapter import Call, Page, PollContext, ProviderAdapter, Response
from gpubroker.core.offer import Availability, Offer
from gpubroker.core.provider import Credentials, CredentialSpec, ProviderInfo
from gpubroker_gcp.machines import MACHINES, Machine
from gpubroker_gcp.skus import GPU_MEMORY_GB, UNITS, part_for

SERVICE = "6F81-5844-456A"  # Compute Engine
PATH = f"/v1/services/{SERVICE}/skus"
PAGE_SIZE = "5000"  # the documented maximum
USAGE_TYPES = {"OnDemand": False, "Preemptible": True}  # -> spot
NANOS = Decimal(1_000_000_000)

Price = tuple[str, str, bool, str, str, str]
"""One part's price in one region: (kind, key, spot, region, USD per unit, SKU id)."""

COUNTRIES = {
    "us-central1": "US", "us-east1": "US", "us-east4": "US", "us-east5": "US", "us-south1": "US",
    "us-west1": "US", "us-west2": "US", "us-west3": "US", "us-west4": "US",
    "northamerica-northeast1": "CA", "northamerica-northeast2": "CA", "southamerica-east1": "BR",
    "southamerica-west1": "CL", "europe-west1": "BE", "europe-west2": "GB", "europe-west3": "DE",
    "europe-west4": "NL", "europe-west6": "CH", "europe-west8": "IT", "europe-west9": "FR",
    "europe-west10": "DE", "europe-west12": "IT", "europe-north1": "FI", "europe-central2": "PL",
    "europe-southwest1": "ES", "asia-east1": "TW", "asia-east2": "HK", "asia-northeast1": "JP",
    "asia-northeast2": "JP", "asia-northeast3": "KR", "asia-south1": "IN", "asia-south2": "IN",
    "asia-southeast1": "SG", "asia-southeast2": "ID", "australia-southeast1": "AU",
    "australia-southeast2": "AU", "me-west1": "IL", "me-central1": "QA", "me-central2": "SA",
    "africa-south1": "ZA",
}  # fmt: skip


class GcpAdapter(ProviderAdapter):
    info = ProviderInfo(
        name="gcp",
        display_name="Google Cloud",
        api_base_url="https://cloudbilling.googleapis.com",
        homepage="https://cloud.google.com/compute/gpus-pricing",
        credentials=(
            CredentialSpec(name="api_key", description="Google Cloud API key with the Cloud Billing API enabled."),
        ),
        poll_interval_s=3600,
        concurrency_limit=1,
        rate_limit_per_minute=60,
        request_timeout_s=30,
    )
    recordings = files(__package__).joinpath("recordings")
    schemas = files(__package__).joinpath("schemas")

    def calls(self, ctx: PollContext) -> Iterable[Call]:
        return [Call(PATH, params={"currencyCode": "USD", "pageSize": PAGE_SIZE})]

    def authorize(self, call: Call, credentials: Credentials) -> Call:
        return replace(call, params={**call.params, "key": credentials["api_key"]})

    def parse(self, response: Response, ctx: PollContext) -> Page:
        body = response.json()
        skus = body.get("skus", [])  # an empty page omits the field
        if not isinstance(skus, list):
            raise ValueError("'skus' is not a list")
        prices = (*response.call.carry.get("prices", ()), *(price for sku in skus for price in part_prices(sku)))
        token = body.get("nextPageToken")
        if token:
            params = {"currencyCode": "USD", "pageSize": PAGE_SIZE, "pageToken": token}
            return Page(follow=[Call(PATH, params=params, carry={"prices": prices})])
        return Page(records=machine_records(prices))

    def normalise(self, record: Mapping[str, Any], ctx: PollContext) -> Offer | None:
        machine, region, spot = record["machine"], str(record["region"]), bool(record["spot"])
        price = sum((units.decimal(part["quantity"]) * _usd(part) for part in record["parts"]), Decimal(0))
        return ctx.offer(
            provider_offer_id=f"{machine}/{region}" + ("/spot" if spot else ""),
            name=str(record["name"]) + (" (Spot)" if spot else ""),
            gpu_name=str(record["accelerator"]),
            gpu_count=int(record["gpus"]),
            gpu_memory_gb=GPU_MEMORY_GB[record["accelerator"]],
            price_per_hour=price,
            vcpus=int(record["vcpus"]),
            ram_gb=float(record["ram_gb"]),
            spot=spot,
            availability_status=Availability.AVAILABLE,
            region=region,
            country=COUNTRIES.get(region),
        )


def part_prices(sku: Mapping[str, Any]) -> list[Price]:
    """The SKU's price in each of its regions, if it prices a part of a GPU machine.

    A price that cannot be read is kept as its reason, so that the machines needing it are
    rejected (and counted) by ``normalise`` rather than listed without that part.
    """
    part = part_for(str(sku.get("description", "")))
    usage = (sku.get("category") or {}).get("usageType")
    if part is None or usage not in USAGE_TYPES:
        return []
    try:
        usd = str(unit_price_usd(sku.get("pricingInfo"), UNITS[part.kind]))
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        usd = f"SKU {sku.get('skuId')}: {exc}"
    spot, sku_id = USAGE_TYPES[usage], str(sku["skuId"])
    return [(part.kind, part.key, spot, str(region), usd, sku_id) for region in sku.get("serviceRegions") or []]


def machine_records(prices: Iterable[Price]) -> list[Mapping[str, Any]]:
    """One record per machine type, region and usage type whose every part has a price there."""
    index = {(kind, key, spot, region): (usd, sku) for kind, key, spot, region, usd, sku in prices}
    regions = sorted({(spot, region) for _, _, spot, region, _, _ in prices})
    records = []
    for machine in MACHINES:
        for spot, region in regions:
            parts = _parts(machine, spot, region, index)
            if parts is not None:
                records.append({
                    "machine": machine.key, "name": machine.label, "region": region, "spot": spot, "parts": parts,
                    "accelerator": machine.accelerator, "gpus": machine.gpus, "vcpus": machine.vcpus,
                    "ram_gb": machine.ram_gb,
                })  # fmt: skip
    return records


def _parts(
    machine: Machine, spot: bool, region: str, index: Mapping[tuple[str, str, bool, str], tuple[str, str]]
) -> list[dict[str, Any]] | None:
    if machine.billing == "slices":
        wanted = [("slice", machine.accelerator, machine.gpus)]
    else:
        wanted = [("core", machine.family, machine.vcpus), ("ram", machine.family, machine.ram_gb),
                  ("gpu", machine.accelerator, machine.gpus)]  # fmt: skip
    parts = []
    for kind, key, quantity in wanted:
        found = index.get((kind, key, spot, region))
        if found is None:
            return None
        parts.append({"kind": kind, "sku": found[1], "quantity": str(quantity), "usd": found[0]})
    return parts


def _usd(part: Mapping[str, Any]) -> Decimal:
    try:
        return units.decimal(part["usd"])
    except ValueError:
        raise ValueError(f"unreadable {part['kind']} price ({part['usd']})") from None


def unit_price_usd(pricing_info: object, unit: str) -> Decimal:
    """The current (first) price's first tier, per ``unit``, in USD."""
    if not isinstance(pricing_info, list) or not pricing_info:
        raise ValueError("no pricingInfo")
    expression = pricing_info[0]["pricingExpression"]
    if expression["usageUnit"] != unit:
        raise ValueError(f"priced per {expression['usageUnit']!r}, not per {unit!r}")
    rates = sorted(expression["tieredRates"], key=lambda rate: units.decimal(rate.get("startUsageAmount", 0)))
    price = rates[0]["unitPrice"]
    amount = units.decimal(price.get("units", "0")) + units.decimal(price.get("nanos", 0)) / NANOS
    if amount <= 0:
        raise ValueError(f"non-positive price {amount}")
    return fx.to_usd(amount, str(price.get("currencyCode", "USD")))
