"""Oracle Cloud Infrastructure: GPU shapes priced from the public cost-estimator products list.

One unauthenticated ``GET /pls/apex/cetools/api/v1/products/?currencyCode=USD`` returns every
OCI price-list item (no paging): ``{"lastUpdated": ..., "items": [...]}``. GPU items carry the
metric ``"GPU Per Hour"`` and a pay-as-you-go price per GPU-hour in
``currencyCodeLocalizations``; the host CPU, memory and local NVMe of a GPU shape are included
in that GPU rate. The list names part numbers, not shapes, so ``shapes.py`` maps each part to
the shapes it bills; one offer is made per shape, at per-GPU price x the shape's GPU count.
OCI prices are the same in every commercial region and the list names no region or capacity,
so offers carry the region ``global`` and mean "listed for sale", not "in stock".
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
from gpubroker_oci.shapes import SHAPES_BY_PART, Shape

PATH = "/pls/apex/cetools/api/v1/products/"
GPU_METRIC = "GPU Per Hour"
PAY_AS_YOU_GO = "PAY_AS_YOU_GO"
REGION = "global"
SHAPE_KEY = "_gpubroker_shape"  # added by parse: which mapped shape this copy of the item is


class OciAdapter(ProviderAdapter):
    info = ProviderInfo(
        name="oci",
        display_name="Oracle Cloud Infrastructure",
        api_base_url="https://apexapps.oracle.com",
        homepage="https://www.oracle.com/cloud/price-list/",
        credentials=(),
        poll_interval_s=3600,
        concurrency_limit=1,
        rate_limit_per_minute=10,
        request_timeout_s=30,
    )
    recordings = files(__package__).joinpath("recordings")
    schemas = files(__package__).joinpath("schemas")

    def calls(self, ctx: PollContext) -> Iterable[Call]:
        return [Call(PATH, params={"currencyCode": "USD"})]

    def parse(self, response: Response, ctx: PollContext) -> Page:
        items = response.json()["items"]
        if not isinstance(items, list):
            raise ValueError("'items' is not a list")
        return Page(records=[record for item in items for record in _per_shape(item)])

    def normalise(self, record: Mapping[str, Any], ctx: PollContext) -> Offer | None:
        shape = _shape(record)
        if shape is None:
            return None  # not a GPU-hour item, or a part whose shapes are not mapped
        per_gpu = gpu_hour_usd(record["currencyCodeLocalizations"])
        return ctx.offer(
            provider_offer_id=f"{record['partNumber']}/{shape.name}",
            name=shape.name,
            gpu_name=shape.gpu_name,
            gpu_count=shape.gpu_count,
            gpu_memory_gb=shape.gpu_memory_gb,
            price_per_hour=units.per_instance(per_gpu, shape.gpu_count),
            vcpus=shape.vcpus,
            ram_gb=shape.ram_gb,
            cpu_arch=shape.cpu_arch,
            availability_status=Availability.AVAILABLE,
            region=REGION,
        )


def _per_shape(item: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """One record per shape a GPU-hour part bills; any other item passes through unchanged."""
    if item.get("metricName") != GPU_METRIC:
        return [item]
    shapes = SHAPES_BY_PART.get(str(item.get("partNumber")), ())
    return [{**item, SHAPE_KEY: shape.name} for shape in shapes] or [item]


def _shape(record: Mapping[str, Any]) -> Shape | None:
    name = record.get(SHAPE_KEY)
    shapes = SHAPES_BY_PART.get(str(record.get("partNumber")), ())
    return next((shape for shape in shapes if shape.name == name), None)


def gpu_hour_usd(localizations: object) -> Decimal:
    """The pay-as-you-go price per GPU-hour in USD.

    We ask for USD, so the USD localisation is used; should only another currency come back,
    it is converted through the dated rate table rather than assumed to be dollars.
    """
    if not isinstance(localizations, list) or not localizations:
        raise ValueError("no currencyCodeLocalizations")
    chosen = next((loc for loc in localizations if loc.get("currencyCode") == "USD"), localizations[0])
    prices = [p for p in chosen.get("prices", []) if p.get("model") == PAY_AS_YOU_GO]
    if len(prices) != 1:
        raise ValueError(f"expected one {PAY_AS_YOU_GO} price, found {len(prices)}")
    value = units.decimal(prices[0]["value"])
    if value <= 0:
        raise ValueError(f"non-positive price {value}")
    return fx.to_usd(value, str(chosen["currencyCode"]))
