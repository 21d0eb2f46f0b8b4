"""TensorDock: the marketplace's hostnodes and their free GPUs (``GET /api/v2/hostnodes``).

TensorDock is a marketplace of independent hosts. The v2 API lists every hostnode with the GPUs
it has free (``available_resources.gpus``: model, ``availableCount`` and a price per GPU-hour),
its free vCPUs, RAM and disk, and the host's per-unit prices for those (``pricing``: per vCPU-,
per GB-RAM- and per GB-storage-hour). The GPU price does not include CPU, RAM or disk, which are
billed on top, so this plugin prices one concrete instance per hostnode and GPU model: all of that
model's free GPUs, plus the hostnode's free vCPUs, RAM and disk shared out in proportion to the
GPUs taken (at least TensorDock's 100 GB minimum disk). Every figure comes from the answer; the
README explains the choice and the sources.

Renting (plugin API 2): ``POST /api/v2/instances`` on the offer's hostnode (the broker's tag as
the instance's ``name``), ``GET /api/v2/instances[/{id}]``, ``DELETE /api/v2/instances/{id}``
and scaling with ``PUT /api/v2/instances/{id}/modify``; a created instance is ``{"data": {"type",
"id", "name", "status"}}``, listed and read ones carry ``attributes``, and errors are
``{"errors": [{"status", "title", "detail"}]}``. TensorDock bills by the second and has no idempotency key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from decimal import Decimal
from importlib.resources import files
from typing import Any

from gpubroker.core import units
from gpubroker.core.adapter import Call, Page, PollContext, ProviderAdapter, Response
from gpubroker.core.offer import Offer
from gpubroker.core.provider import Credentials, CredentialSpec, ProviderInfo
from gpubroker.core.renting import Instance, InstanceState, Refusal, RefusalKind, RentalAction, RentalRequest
from gpubroker_tensordock.countries import country_code

HOSTNODES_PATH = "/api/v2/hostnodes"
INSTANCES_PATH = "/api/v2/instances"
DEFAULT_IMAGE = "ubuntu2404"
RENTAL_VCPUS_PER_GPU = 4
RENTAL_RAM_GB_PER_GPU = 16
_STATES = {
    "starting": InstanceState.CREATING,
    "running": InstanceState.RUNNING,
    "stopping": InstanceState.STOPPED,
    "stopped": InstanceState.STOPPED,
    "deleting": InstanceState.TERMINATED,
    "deleted": InstanceState.TERMINATED,
}
_BALANCE = re.compile(r"balance|funds|credit", re.I)
_CAPACITY = re.compile(r"not enough|no longer available|unavailable|insufficient (gpu|resources)", re.I)
MIN_STORAGE_GB = 100
"""TensorDock refuses an instance with less than 100 GB of disk."""


class TensorDockAdapter(ProviderAdapter):
    info = ProviderInfo(
        name="tensordock",
        display_name="TensorDock",
        api_base_url="https://dashboard.tensordock.com",
        homepage="https://www.tensordock.com",
        credentials=(
            CredentialSpec(name="api_key", description="TensorDock v2 API token (dashboard.tensordock.com/api)."),
        ),
        poll_interval_s=60,
        concurrency_limit=1,
        rate_limit_per_minute=100,
        request_timeout_s=20,
    )
    recordings = files(__package__).joinpath("recordings")
    schemas = files(__package__).joinpath("schemas")
    renting = frozenset(RentalAction)
    billing_granularity_s = 1

    def calls(self, ctx: PollContext) -> Iterable[Call]:
        return [Call(HOSTNODES_PATH, tag="hostnodes")]

    def authorize(self, call: Call, credentials: Credentials) -> Call:
        return replace(call, headers={**call.headers, "Authorization": f"Bearer {credentials['api_key']}"})

    def parse(self, response: Response, ctx: PollContext) -> Page:
        """One record per (hostnode, GPU model): a hostnode with two models is two offers."""
        hostnodes = response.json()["data"]["hostnodes"]
        if not isinstance(hostnodes, list):
            raise ValueError("'data.hostnodes' is not a list")
        records: list[Mapping[str, Any]] = []
        for hostnode in hostnodes:
            gpus = (hostnode.get("available_resources") or {}).get("gpus") or []
            records.extend({"hostnode": hostnode, "gpu": gpu} for gpu in gpus)
        return Page(records=records)

    def normalise(self, record: Mapping[str, Any], ctx: PollContext) -> Offer | None:
        hostnode, gpu = record["hostnode"], record["gpu"]
        resources = hostnode["available_resources"]
        free = int(gpu["availableCount"])
        gpu_count = max(free, 1)
        config = instance_config(resources, gpu_count)
        gpu_name = str(gpu["v0Name"])
        location = hostnode.get("location") or {}
        return ctx.offer(
            provider_offer_id=f"{hostnode['id']}/{gpu_name}",
            name=f"{gpu_count}x {gpu_name} @ {_place(location)}",
            gpu_name=gpu_name,
            gpu_count=gpu_count,
            price_per_hour=instance_price(gpu["price_per_hr"], gpu_count, config, hostnode["pricing"]),
            vcpus=config["vcpus"],
            ram_gb=config["ram_gb"],
            storage_gb=config["storage_gb"],
            availability_status=units.availability(free),
            region=str(hostnode.get("location_id") or location.get("uuid") or "unknown"),
            country=country_code(location.get("country")),
            compliance_tags=_tags(location),
            resold_from=_host(location),
        )

    def provision_call(self, request: RentalRequest) -> Call:
        hostnode, gpu_model = request.provider_offer_id.split("/", 1)
        attributes = {
            "name": request.tag,
            "type": "virtualmachine",
            "image": request.image or DEFAULT_IMAGE,
            "resources": {
                "vcpu_count": RENTAL_VCPUS_PER_GPU * request.gpu_count,
                "ram_gb": RENTAL_RAM_GB_PER_GPU * request.gpu_count,
                "storage_gb": MIN_STORAGE_GB,
                "gpus": {gpu_model: {"count": request.gpu_count}},
            },
            "hostnode_id": hostnode,
            "useDedicatedIp": False,
            "ssh_key": request.ssh_public_key,
        }
        return Call(INSTANCES_PATH, method="POST", json={"data": {"type": "virtualmachine", "attributes": attributes}})

    def read_provisioned(self, response: Response, request: RentalRequest) -> Instance:
        return _instance(response.json()["data"])

    def status_call(self, instance_id: str) -> Call:
        return Call(f"{INSTANCES_PATH}/{instance_id}")

    def read_status(self, response: Response, instance_id: str) -> Instance:
        return _instance(response.json()["data"])

    def instances_call(self) -> Call:
        return Call(INSTANCES_PATH)

    def read_instances(self, response: Response) -> list[Instance]:
        return [_instance(record) for record in response.json()["data"]["instances"]]

    def scale_call(self, instance: Instance, gpu_count: int, request: RentalRequest) -> Call:
        _, gpu_model = request.provider_offer_id.split("/", 1)
        body = {"gpus": {"gpuV0Name": gpu_model, "count": gpu_count}}
        return Call(f"{INSTANCES_PATH}/{instance.instance_id}/modify", method="PUT", json=body)

    def terminate_call(self, instance_id: str) -> Call:
        return Call(f"{INSTANCES_PATH}/{instance_id}", method="DELETE")

    def read_refusal(self, response: Response) -> Refusal | None:
        if response.status < 400 or not response.body.startswith(b"{"):
            return None
        errors = response.json().get("errors") or [{}]
        detail = " ".join(str(errors[0][k]) for k in ("title", "detail") if errors[0].get(k))
        if response.status == 404:
            return Refusal(RefusalKind.NOT_FOUND, detail or "instance not found")
        if _BALANCE.search(detail):
            return Refusal(RefusalKind.INSUFFICIENT_BALANCE, detail)
        if _CAPACITY.search(detail):
            return Refusal(RefusalKind.OUT_OF_CAPACITY, detail)
        return None


def instance_config(resources: Mapping[str, Any], gpu_count: int) -> dict[str, int]:
    """The hostnode's free vCPUs, RAM and disk shared out by the GPUs taken.

    The share is ``gpu_count`` over all free GPUs on the hostnode (every model), rounded down,
    with at least one vCPU and one GB of RAM, and at least the 100 GB minimum disk when the
    hostnode has that much free.
    """
    total = sum(int(g.get("availableCount", 0)) for g in resources.get("gpus") or [])
    share = Decimal(gpu_count) / Decimal(max(total, gpu_count))
    vcpus, ram, storage = (int(resources[key]) for key in ("vcpu_count", "ram_gb", "storage_gb"))
    return {
        "vcpus": max(1, int(vcpus * share)),
        "ram_gb": max(1, int(ram * share)),
        "storage_gb": min(storage, max(MIN_STORAGE_GB, int(storage * share))) if storage else MIN_STORAGE_GB,
    }


def instance_price(
    price_per_gpu: object, gpu_count: int, config: Mapping[str, int], pricing: Mapping[str, Any]
) -> Decimal:
    """GPUs at their per-GPU-hour price plus vCPU, RAM and disk at the host's per-unit-hour prices."""
    price = units.per_instance(units.decimal(price_per_gpu), gpu_count)
    price += config["vcpus"] * units.decimal(pricing["per_vcpu_hr"])
    price += config["ram_gb"] * units.decimal(pricing["per_gb_ram_hr"])
    price += config["storage_gb"] * units.decimal(pricing["per_gb_storage_hr"])
    if price <= 0:
        raise ValueError(f"non-positive hourly price {price}")
    return price


def _place(location: Mapping[str, Any]) -> str:
    parts = [location.get(key) for key in ("city", "stateprovince", "country")]
    return ", ".join(str(part) for part in parts if part) or "unknown location"


def _tags(location: Mapping[str, Any]) -> tuple[str, ...]:
    tier = location.get("tier")
    return (f"datacenter-tier-{tier}",) if isinstance(tier, int) and tier > 0 else ()


def _host(location: Mapping[str, Any]) -> str | None:
    name = location.get("organizationName")
    return str(name).strip() or None if name else None


def _instance(record: Mapping[str, Any]) -> Instance:
    """An instance from a create answer (name and status beside the id) or a list or status answer
    (under ``attributes``); GPUs and rate are read when the answer has them."""
    attributes = record.get("attributes") or record
    gpus = (attributes.get("resources") or {}).get("gpus") or []
    rate = attributes.get("rateHourly")
    return Instance(
        str(record["id"]),
        _STATES.get(str(attributes.get("status")), InstanceState.CREATING),
        attributes.get("name") or None,
        sum(int(gpu.get("count", 0)) for gpu in gpus) or None,
        units.decimal(rate) if rate is not None else None,
    )
