"""Microsoft Azure: GPU VM prices from the public Retail Prices API.

``GET https://prices.azure.com/api/retail/prices`` needs no credentials. One OData ``$filter``
selects Linux pay-as-you-go meters of the NC/ND/NV series in every region; the answer is paged,
and ``NextPageLink`` is the next page as an absolute URL (``null`` on the last page). Each item
is one meter: ``retailPrice`` is USD per ``unitOfMeasure`` ("1 Hour") for the whole VM, and a
``skuName`` ending in " Spot" marks the Spot meters. Meters ending in " Low Priority" are of
low-priority VMs, which Microsoft retired on 30 September 2025: the API may still list them, but
they cannot be rented and give no offer. GPU counts and models are not in the API; ``sizes.py``
holds them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from gpubroker.core import fx, units
from gpubroker.core.adapter import Call, Page, PollContext, ProviderAdapter, Response
from gpubroker.core.offer import Availability, Offer
from gpubroker.core.provider import ProviderInfo
from gpubroker_azure.sizes import GPU_SIZES

PATH = "/api/retail/prices"
API_VERSION = "2023-01-01-preview"
GPU_FILTER = (
    "serviceName eq 'Virtual Machines' and priceType eq 'Consumption'"
    " and contains(productName, 'Windows') eq false"
    " and (contains(armSkuName, 'Standard_NC') or contains(armSkuName, 'Standard_ND')"
    " or contains(armSkuName, 'Standard_NV'))"
)
HOURLY = "1 Hour"
VARIANTS = (("Spot", "spot"), ("Low Priority", "low-priority"))  # skuName suffix -> offer-id part
RETIRED = frozenset({"low-priority"})
"""Meter variants that can no longer be rented: low-priority VMs, retired 30 September 2025."""

# armRegionName -> ISO country, for the regions GPU series are sold in.
COUNTRIES = {
    "eastus": "US", "eastus2": "US", "centralus": "US", "northcentralus": "US", "southcentralus": "US",
    "westus": "US", "westus2": "US", "westus3": "US", "westcentralus": "US", "canadacentral": "CA",
    "canadaeast": "CA", "brazilsouth": "BR", "northeurope": "IE", "westeurope": "NL", "uksouth": "GB",
    "ukwest": "GB", "francecentral": "FR", "germanywestcentral": "DE", "swedencentral": "SE",
    "switzerlandnorth": "CH", "norwayeast": "NO", "polandcentral": "PL", "italynorth": "IT",
    "spaincentral": "ES", "uaenorth": "AE", "qatarcentral": "QA", "israelcentral": "IL",
    "southafricanorth": "ZA", "centralindia": "IN", "southindia": "IN", "japaneast": "JP",
    "japanwest": "JP", "koreacentral": "KR", "southeastasia": "SG", "eastasia": "HK",
    "australiaeast": "AU", "australiasoutheast": "AU",
}  # fmt: skip


class AzureAdapter(ProviderAdapter):
    info = ProviderInfo(
        name="azure",
        display_name="Microsoft Azure",
        api_base_url="https://prices.azure.com",
        homepage="https://azure.microsoft.com/pricing/details/virtual-machines/linux/",
        credentials=(),
        poll_interval_s=3600,
        concurrency_limit=1,
        rate_limit_per_minute=60,
        request_timeout_s=30,
    )
    recordings = files(__package__).joinpath("recordings")
    schemas = files(__package__).joinpath("schemas")

    def calls(self, ctx: PollContext) -> Iterable[Call]:
        params = {"api-version": API_VERSION, "meterRegion": "'primary'", "$filter": GPU_FILTER}
        return [Call(PATH, params=params)]

    def parse(self, response: Response, ctx: PollContext) -> Page:
        body = response.json()
        items = body["Items"]
        if not isinstance(items, list):
            raise ValueError("'Items' is not a list")
        return Page(records=items, follow=_next_page(body.get("NextPageLink")))

    def normalise(self, record: Mapping[str, Any], ctx: PollContext) -> Offer | None:
        size = GPU_SIZES.get(str(record.get("armSkuName")))
        if size is None or record.get("type") != "Consumption":
            return None  # not a listed GPU size, or not a pay-as-you-go meter
        if record["unitOfMeasure"] != HOURLY:
            raise ValueError(f"unexpected unitOfMeasure {record['unitOfMeasure']!r}")
        variant, label = meter_variant(str(record["skuName"]))
        if variant in RETIRED:
            return None
        region = str(record["armRegionName"])
        return ctx.offer(
            provider_offer_id=f"{region}/{record['armSkuName']}/{variant}",
            name=str(record["armSkuName"]) + (f" ({label})" if label else ""),
            gpu_name=size.gpu_name,
            gpu_count=size.gpu_count,
            gpu_memory_gb=size.gpu_memory_gb,
            price_per_hour=hourly_usd(record),
            spot=variant != "regular",
            vcpus=size.vcpus,
            ram_gb=size.ram_gb,
            cpu_arch=size.cpu_arch,
            availability_status=Availability.AVAILABLE,
            region=region,
            country=COUNTRIES.get(region),
        )


def meter_variant(sku_name: str) -> tuple[str, str]:
    """``("spot", "Spot")``, ``("low-priority", "Low Priority")`` or ``("regular", "")``."""
    for suffix, variant in VARIANTS:
        if sku_name.endswith(" " + suffix):
            return variant, suffix
    return "regular", ""


def hourly_usd(record: Mapping[str, Any]) -> Decimal:
    """``retailPrice`` in USD; another ``currencyCode`` goes through the dated rate table."""
    price = units.decimal(record["retailPrice"])
    if price <= 0:
        raise ValueError(f"non-positive retailPrice {price}")
    return fx.to_usd(price, str(record.get("currencyCode", "USD")))


def _next_page(link: object) -> list[Call]:
    """``NextPageLink`` is absolute (``https://prices.azure.com:443/api/retail/prices?...&$skip=1000``)."""
    if not link:
        return []
    parts = urlsplit(str(link))
    return [Call(parts.path, params=dict(parse_qsl(parts.query, keep_blank_values=True)))]
