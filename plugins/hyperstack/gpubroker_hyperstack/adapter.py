"""Hyperstack (NexGen Cloud): VM flavors per region, priced from the pricebook.

Two endpoints of Infrahub, both behind the ``api_key`` header: ``GET /v1/pricebook`` (a bare
JSON array of ``{"name", "value", "original_value", "discount_applied", "start_time",
"end_time"}``, ``value`` being the US dollars per hour charged for one unit of the named resource,
for a GPU one GPU, during the entry's time window; the entry in force at the poll's time is kept)
and ``GET /v1/core/flavors`` (``{"status", "message", "data":
[{"gpu", "region_name", "flavors": [...]}]}``, each flavor with ``gpu``, ``gpu_count``, ``cpu``,
``ram`` and ``stock_available``). The poll asks for the pricebook first and carries it on the
flavors call (``Call.carry``), so each flavor is priced as ``gpu_count`` times the pricebook
value of its ``gpu``. Flavors whose ``gpu`` ends in ``-spot`` are spot VMs with their own
pricebook entry. Facts and sources are in README.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

from gpubroker.core import units
from gpubroker.core.adapter import Call, Page, PollContext, ProviderAdapter, Response
from gpubroker.core.offer import Offer
from gpubroker.core.provider import Credentials, CredentialSpec, ProviderInfo

PRICEBOOK_PATH = "/v1/pricebook"
FLAVORS_PATH = "/v1/core/flavors"
SPOT_SUFFIX = "-spot"
# Region names are "<PLACE>-<n>"; the place names the country.
_COUNTRY = {"CANADA": "CA", "NORWAY": "NO", "US": "US"}


class HyperstackAdapter(ProviderAdapter):
    info = ProviderInfo(
        name="hyperstack",
        display_name="Hyperstack",
        api_base_url="https://infrahub-api.nexgencloud.com",
        homepage="https://www.hyperstack.cloud",
        credentials=(CredentialSpec(name="api_key", description="Hyperstack API key (sent in the api_key header)."),),
        poll_interval_s=60,
        concurrency_limit=1,
        rate_limit_per_minute=60,
        request_timeout_s=15,
    )
    recordings = files(__package__).joinpath("recordings")
    schemas = files(__package__).joinpath("schemas")

    def calls(self, ctx: PollContext) -> Iterable[Call]:
        return [Call(PRICEBOOK_PATH, tag="pricebook")]

    def authorize(self, call: Call, credentials: Credentials) -> Call:
        if "api_key" not in credentials:
            return call
        return replace(call, headers={**call.headers, "api_key": credentials["api_key"]})

    def parse(self, response: Response, ctx: PollContext) -> Page:
        body = response.json()
        if response.call.path == PRICEBOOK_PATH:
            prices = pricebook(body, ctx.observed_at)
            return Page(follow=[Call(FLAVORS_PATH, tag="flavors", carry={"prices": prices})])
        prices = response.call.carry.get("prices")
        if prices is None:
            raise ValueError("a flavors answer arrived without the pricebook it is priced from")
        if body.get("status") is not True:
            raise ValueError(f"Hyperstack refused the flavors request: {body.get('message')!r}")
        records = [
            {"flavor": flavor, "price_per_gpu": prices.get(str(flavor.get("gpu") or ""))}
            for group in body["data"]
            for flavor in group["flavors"]
        ]
        return Page(records=records)

    def normalise(self, record: Mapping[str, Any], ctx: PollContext) -> Offer | None:
        flavor = record["flavor"]
        gpu_name = str(flavor.get("gpu") or "")
        gpu_count = int(flavor.get("gpu_count") or 0)
        if not gpu_name or gpu_count < 1:
            return None  # CPU-only flavor
        if record["price_per_gpu"] is None:
            return None  # the pricebook has no entry for this GPU: never guess one
        price = units.per_instance(units.decimal(record["price_per_gpu"]), gpu_count)
        spot = gpu_name.endswith(SPOT_SUFFIX)
        region = str(flavor["region_name"])
        return ctx.offer(
            provider_offer_id=f"{region}/{flavor['name']}",
            name=str(flavor["name"]),
            gpu_name=gpu_name,
            gpu_count=gpu_count,
            price_per_hour=price,
            spot_price=price if spot else None,
            spot=spot,
            vcpus=_number(flavor.get("cpu")),
            ram_gb=_number(flavor.get("ram")),
            storage_gb=_number(flavor.get("disk")),
            availability_status=units.availability(bool(flavor["stock_available"])),
            region=region,
            country=region_country(region),
        )


def pricebook(body: object, now: datetime) -> dict[str, str]:
    """``{resource name: hourly USD value}`` of the entries in force at ``now``.

    An entry applies from ``start_time`` (none: always) until ``end_time`` (none: open-ended);
    where several apply, the one that started last wins. ``value`` is what is charged, after
    any discount (``discount_applied``); ``original_value`` is the list price and is not used.
    """
    if not isinstance(body, list):
        raise ValueError("the pricebook is not a JSON array")
    in_force: dict[str, tuple[datetime, str]] = {}
    for item in body:
        start, end = _time(item.get("start_time")), _time(item.get("end_time"))
        if (start is not None and start > now) or (end is not None and end <= now):
            continue
        since = start or datetime.min.replace(tzinfo=UTC)
        name = str(item["name"])
        if name not in in_force or since >= in_force[name][0]:
            in_force[name] = (since, str(units.decimal(item["value"])))
    return {name: value for name, (_, value) in in_force.items()}


def _time(value: object) -> datetime | None:
    """A pricebook time (ISO 8601, UTC when it names no zone), or ``None`` when absent."""
    if value in (None, ""):
        return None
    moment = datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def region_country(region: str) -> str | None:
    return _COUNTRY.get(region.rsplit("-", 1)[0].upper())


def _number(value: object) -> float | None:
    return None if value is None else float(units.decimal(value))
