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

Renting (plugin API 2): ``POST /v1/core/virtual-machines`` (one VM of the offer's flavor, in the
environment named by the request's ``environment_name`` option, the broker's tag as its ``name``
and as a label), ``GET /v1/core/virtual-machines[/{id}]``, ``DELETE
/v1/core/virtual-machines/{id}``, and scaling by resizing to the same flavor family with another
GPU count (``POST /v1/core/virtual-machines/{id}/resize``). Errors are ``{"status": false,
"message", "error_reason"}``. Hyperstack bills by the minute and has no idempotency key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

from gpubroker.core import units
from gpubroker.core.adapter import Call, Page, PollContext, ProviderAdapter, Response
from gpubroker.core.offer import Offer
from gpubroker.core.provider import Credentials, CredentialSpec, ProviderInfo
from gpubroker.core.renting import (
    Instance,
    InstanceState,
    Refusal,
    RefusalKind,
    RentalAction,
    RentalRequest,
)

PRICEBOOK_PATH = "/v1/pricebook"
FLAVORS_PATH = "/v1/core/flavors"
SPOT_SUFFIX = "-spot"
VMS_PATH = "/v1/core/virtual-machines"
DEFAULT_IMAGE = "Ubuntu Server 22.04 LTS R535 CUDA 12.2"
_GPU_COUNT = re.compile(r"x(\d+)(-spot)?$")  # flavor names end in the GPU count: n3-H100x8, n3-A6000x1-spot
_STATES = {
    "CREATING": InstanceState.CREATING,
    "BUILD": InstanceState.CREATING,
    "ACTIVE": InstanceState.RUNNING,
    "RESIZING": InstanceState.RUNNING,
    "SHUTOFF": InstanceState.STOPPED,
    "HIBERNATED": InstanceState.STOPPED,
    "DELETING": InstanceState.TERMINATED,
    "DELETED": InstanceState.TERMINATED,
}
_BALANCE = re.compile(r"insufficient (balance|credit)", re.IGNORECASE)
_CAPACITY = re.compile(r"capacity|stock|not enough resources", re.IGNORECASE)
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
    renting = frozenset(RentalAction)
    billing_granularity_s = 60

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

    def provision_call(self, request: RentalRequest) -> Call:
        _, flavor = request.provider_offer_id.split("/", 1)
        body = {
            "name": request.tag,
            "environment_name": request.options.get("environment_name", ""),
            "image_name": request.image or DEFAULT_IMAGE,
            "flavor_name": flavor,
            "key_name": request.options.get("key_name", ""),
            "count": 1,
            "assign_floating_ip": True,
            "labels": [request.tag],
        }
        return Call(VMS_PATH, method="POST", json=body)

    def read_provisioned(self, response: Response, request: RentalRequest) -> Instance:
        (record,) = response.json()["instances"]
        return _instance(record)

    def status_call(self, instance_id: str) -> Call:
        return Call(f"{VMS_PATH}/{int(instance_id)}")

    def read_status(self, response: Response, instance_id: str) -> Instance:
        return _instance(response.json()["instance"])

    def instances_call(self) -> Call:
        return Call(VMS_PATH)

    def read_instances(self, response: Response) -> list[Instance]:
        return [_instance(record) for record in response.json()["instances"]]

    def scale_call(self, instance: Instance, gpu_count: int, request: RentalRequest) -> Call:
        _, flavor = request.provider_offer_id.split("/", 1)
        resized, changed = _GPU_COUNT.subn(lambda match: f"x{gpu_count}{match.group(2) or ''}", flavor)
        if not changed:
            raise ValueError(f"flavor {flavor!r} does not end in its GPU count")
        return Call(f"{VMS_PATH}/{int(instance.instance_id)}/resize", method="POST", json={"flavor_name": resized})

    def terminate_call(self, instance_id: str) -> Call:
        return Call(f"{VMS_PATH}/{int(instance_id)}", method="DELETE")

    def read_refusal(self, response: Response) -> Refusal | None:
        if response.status < 400 or not response.body.startswith(b"{"):
            return None
        body = response.json()
        message, reason = str(body.get("message", "")), body.get("error_reason")
        if reason == "not_found" or response.status == 404:
            return Refusal(RefusalKind.NOT_FOUND, message)
        if reason == "unauthorized":
            return Refusal(RefusalKind.AUTH, message)
        if _BALANCE.search(message):
            return Refusal(RefusalKind.INSUFFICIENT_BALANCE, message)
        if _CAPACITY.search(message):
            return Refusal(RefusalKind.OUT_OF_CAPACITY, message)
        return None


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


def _instance(record: Mapping[str, Any]) -> Instance:
    flavor = record.get("flavor") or {}
    return Instance(
        str(record["id"]),
        _STATES.get(str(record.get("status")), InstanceState.CREATING),
        record.get("name") or None,
        flavor.get("gpu_count"),
    )
