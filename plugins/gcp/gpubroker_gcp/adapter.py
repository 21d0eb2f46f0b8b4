"""Google Cloud: Compute Engine GPU prices from the Cloud Billing Catalog API.

``GET /v1/services/6F81-5844-456A/skus?key=...&currencyCode=USD&pageSize=5000`` lists every
Compute Engine SKU, paged by ``pageToken``/``nextPageToken`` (empty on the last page). A GPU
SKU is priced per GPU-hour (``pricingExpression.usageUnit == "h"``, price = ``units`` +
``nanos``/1e9) for every region in ``serviceRegions``; ``category.usageType`` is ``OnDemand`` or
``Preemptible`` (Spot).

GCP bills a GPU VM as GPU + vCPU + memory SKUs, and the catalogue gives no machine-type total.
Assembling machine types would need the core and RAM SKUs (often on other pages) in the same
record, which a stateless one-record-one-offer ``normalise`` cannot do. So an offer here is a
**GPU attachment**: N GPUs of one type in one region at N x the GPU-hour price, with the host
VM's vCPUs and memory billed separately and not included (see README).
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
from gpubroker_gcp.gpus import gpu_for

SERVICE = "6F81-5844-456A"  # Compute Engine
PATH = f"/v1/services/{SERVICE}/skus"
PAGE_SIZE = "5000"  # the documented maximum
USAGE_TYPES = {"OnDemand": False, "Preemptible": True}  # -> spot
REGION_KEY, COUNT_KEY = "_gpubroker_region", "_gpubroker_count"
NANOS = Decimal(1_000_000_000)

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

    def calls(self, ctx: PollContext) -> Iterable[Call]:
        return [Call(PATH, params={"currencyCode": "USD", "pageSize": PAGE_SIZE})]

    def authorize(self, call: Call, credentials: Credentials) -> Call:
        return replace(call, params={**call.params, "key": credentials["api_key"]})

    def parse(self, response: Response, ctx: PollContext) -> Page:
        body = response.json()
        skus = body.get("skus", [])  # an empty page omits the field
        if not isinstance(skus, list):
            raise ValueError("'skus' is not a list")
        token = body.get("nextPageToken")
        follow = (
            [Call(PATH, params={"currencyCode": "USD", "pageSize": PAGE_SIZE, "pageToken": token})] if token else []
        )
        return Page(records=[r for sku in skus for r in _attachments(sku)], follow=follow)

    def normalise(self, record: Mapping[str, Any], ctx: PollContext) -> Offer | None:
        gpu = gpu_for(str(record.get("description", "")))
        region, count = record.get(REGION_KEY), record.get(COUNT_KEY)
        if gpu is None or not region or not count:
            return None  # not a GPU SKU, or one without regions
        spot = USAGE_TYPES[record["category"]["usageType"]]
        per_gpu = gpu_hour_usd(record["pricingInfo"])
        return ctx.offer(
            provider_offer_id=f"{record['skuId']}/{region}/{count}",
            name=f"{count}x {gpu.accelerator_type}" + (" (Spot)" if spot else ""),
            gpu_name=gpu.accelerator_type,
            gpu_count=int(count),
            gpu_memory_gb=gpu.memory_gb,
            price_per_hour=units.per_instance(per_gpu, int(count)),
            spot=spot,
            availability_status=Availability.AVAILABLE,
            region=str(region),
            country=COUNTRIES.get(str(region)),
        )


def _attachments(sku: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A GPU SKU becomes one record per (region, attachable count); other SKUs pass through."""
    gpu = gpu_for(str(sku.get("description", "")))
    usage = (sku.get("category") or {}).get("usageType")
    if gpu is None or usage not in USAGE_TYPES:
        return [sku]
    regions = sku.get("serviceRegions") or []
    return [{**sku, REGION_KEY: region, COUNT_KEY: n} for region in regions for n in gpu.counts] or [sku]


def gpu_hour_usd(pricing_info: object) -> Decimal:
    """The current (first) price's first tier, per hour, in USD."""
    if not isinstance(pricing_info, list) or not pricing_info:
        raise ValueError("no pricingInfo")
    expression = pricing_info[0]["pricingExpression"]
    if expression["usageUnit"] != "h":
        raise ValueError(f"GPU SKU priced per {expression['usageUnit']!r}, not per hour")
    rates = sorted(expression["tieredRates"], key=lambda rate: units.decimal(rate.get("startUsageAmount", 0)))
    price = rates[0]["unitPrice"]
    amount = units.decimal(price.get("units", "0")) + units.decimal(price.get("nanos", 0)) / NANOS
    if amount <= 0:
        raise ValueError(f"non-positive price {amount}")
    return fx.to_usd(amount, str(price.get("currencyCode", "USD")))
