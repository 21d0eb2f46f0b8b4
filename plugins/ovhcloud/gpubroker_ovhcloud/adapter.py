"""OVHcloud: Public Cloud GPU flavours from the public order catalogue, one price book per subsidiary.

``GET /v1/order/catalog/public/cloud?ovhSubsidiary=FR`` needs no key and returns the whole Public
Cloud catalogue of one OVH subsidiary (the legal entity that bills the customer), in that
subsidiary's currency (``locale.currencyCode``). Every instance flavour is an ``addons`` entry;
GPU instance rentals are the ones with ``blobs.commercial.brick == "gpu"`` (managed AI services
carry GPU specs too but are priced per minute under other bricks). Prices are integers in
1e-8 of the currency unit, per hour for the whole instance on ``<flavour>.consumption`` plans.

The catalogue says nothing about regions or stock: an offer's ``region`` names the price book it
came from (``subsidiary-FR``), and a flavour tagged ``active`` is reported available. Facts and
sources are in this plugin's README.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from importlib.resources import files
from typing import Any

from gpubroker.core import fx, units
from gpubroker.core.adapter import Call, Page, PollContext, ProviderAdapter, Response
from gpubroker.core.offer import Availability, Offer
from gpubroker.core.provider import ProviderInfo

PATH = "/v1/order/catalog/public/cloud"
SUBSIDIARIES = ("FR", "GB")
PRICE_UNITS_PER_CURRENCY_UNIT = Decimal(10**8)
HOURLY_SUFFIX = ".consumption"


class OvhCloudAdapter(ProviderAdapter):
    info = ProviderInfo(
        name="ovhcloud",
        display_name="OVHcloud",
        api_base_url="https://eu.api.ovh.com",
        homepage="https://www.ovhcloud.com/en/public-cloud/gpu/",
        credentials=(),
        poll_interval_s=3600,
        # One call at a time: two multi-megabyte catalogues, and the same offer order every poll.
        concurrency_limit=1,
        rate_limit_per_minute=30,
        request_timeout_s=60,
    )
    recordings = files(__package__).joinpath("recordings")
    schemas = files(__package__).joinpath("schemas")

    def calls(self, ctx: PollContext) -> Iterable[Call]:
        return [Call(PATH, params={"ovhSubsidiary": code}, tag=code) for code in SUBSIDIARIES]

    def parse(self, response: Response, ctx: PollContext) -> Page:
        body = response.json()
        locale = body["locale"]
        asked = response.call.params.get("ovhSubsidiary")
        if asked and locale["subsidiary"] != asked:
            raise ValueError(f"asked for the {asked} catalogue, got the {locale['subsidiary']} one")
        addons = body["addons"]
        if not isinstance(addons, list):
            raise ValueError("'addons' is not a list")
        book = {"ovh_subsidiary": str(locale["subsidiary"]), "ovh_currency": str(locale["currencyCode"])}
        return Page(records=[{**addon, **book} for addon in addons if _brick(addon) == "gpu"])

    def normalise(self, record: Mapping[str, Any], ctx: PollContext) -> Offer | None:
        plan_code = str(record["planCode"])
        technical = record["blobs"]["technical"]
        if not plan_code.endswith(HOURLY_SUFFIX) or technical.get("os", {}).get("family") == "windows":
            return None  # monthly plans and Windows-licence flavours of the same hardware
        gpu = technical["gpu"]
        subsidiary = str(record["ovh_subsidiary"])
        return ctx.offer(
            provider_offer_id=f"{subsidiary}/{plan_code}",
            name=str(record.get("invoiceName") or plan_code.removesuffix(HOURLY_SUFFIX)),
            gpu_name=str(gpu["model"]),
            gpu_count=int(gpu["number"]),
            gpu_memory_gb=_number(gpu.get("memory", {}).get("size")),
            price_per_hour=hourly_price_usd(record["pricings"], str(record["ovh_currency"])),
            vcpus=_number(technical.get("cpu", {}).get("cores")),
            ram_gb=_number(technical.get("memory", {}).get("size")),
            storage_gb=_storage_gb(technical),
            cpu_arch="x86_64",
            availability_status=availability_of(record["blobs"].get("tags") or []),
            region=f"subsidiary-{subsidiary}",
        )


def hourly_price_usd(pricings: list[Mapping[str, Any]], currency: str) -> Decimal:
    """The consumption (hourly) price of a flavour, from 1e-8 currency units to US dollars."""
    hourly = [p for p in pricings if "consumption" in (p.get("capacities") or [])] or pricings
    if len(hourly) != 1:
        raise ValueError(f"expected one hourly pricing, found {len(hourly)}")
    amount = units.decimal(hourly[0]["price"]) / PRICE_UNITS_PER_CURRENCY_UNIT
    if amount <= 0:
        raise ValueError(f"price {hourly[0]['price']!r} is not positive")
    return fx.to_usd(amount, currency)


def availability_of(tags: Iterable[str]) -> Availability:
    """The catalogue only says whether a flavour is sold: ``active`` and not ``coming_soon``."""
    tags = set(tags)
    return Availability.AVAILABLE if "active" in tags and "coming_soon" not in tags else Availability.UNAVAILABLE


def _brick(addon: Mapping[str, Any]) -> object:
    return ((addon.get("blobs") or {}).get("commercial") or {}).get("brick")


def _storage_gb(technical: Mapping[str, Any]) -> float | None:
    disks = [*technical.get("storage", {}).get("disks", []), *technical.get("nvme", {}).get("disks", [])]
    total = sum(float(disk["capacity"]) * int(disk.get("number", 1)) for disk in disks)
    return total or None


def _number(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]
