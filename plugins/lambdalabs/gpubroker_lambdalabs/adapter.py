"""Lambda Cloud: on-demand instance types and the regions that have capacity for them now.

``GET /api/v1/instance-types`` answers ``{"data": {<name>: {"instance_type": {...},
"regions_with_capacity_available": [{"name", "description"}]}}}`` in one unpaged object. The
price ``price_cents_per_hour`` is US cents per hour for the whole instance. Lambda says where an
instance type can be launched right now and nothing about the other regions, so an offer is one
(instance type, region with capacity) and is available by construction; a type with capacity in
no region yields no offer until capacity returns. Facts and sources are in README.md.

Renting (plugin API 2): ``POST /api/v1/instance-operations/launch`` with the broker's tag as the
instance's ``name``, ``GET /api/v1/instances[/{id}]`` and ``POST
/api/v1/instance-operations/terminate``; errors are ``{"error": {"code", "message",
"suggestion"}}``. Lambda bills by the minute, has no idempotency key and cannot resize an
instance.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from importlib.resources import files
from typing import Any

from gpubroker.core import units
from gpubroker.core.adapter import Call, Page, PollContext, ProviderAdapter, Response
from gpubroker.core.gpus import resolve
from gpubroker.core.offer import Availability, Offer
from gpubroker.core.provider import Credentials, CredentialSpec, ProviderInfo
from gpubroker.core.renting import Instance, InstanceState, Refusal, RefusalKind, RentalAction, RentalRequest

INSTANCE_TYPES_PATH = "/api/v1/instance-types"
INSTANCES_PATH = "/api/v1/instances"
# Instance.status in Lambda's OpenAPI document.
_STATES = {
    "booting": InstanceState.CREATING,
    "active": InstanceState.RUNNING,
    "unhealthy": InstanceState.RUNNING,
    "terminating": InstanceState.RUNNING,
    "terminated": InstanceState.TERMINATED,
    "preempted": InstanceState.TERMINATED,
}
_REFUSALS = {
    "instance-operations/launch/insufficient-capacity": RefusalKind.OUT_OF_CAPACITY,
    "global/quota-exceeded": RefusalKind.OUT_OF_CAPACITY,
    "global/account-inactive": RefusalKind.INSUFFICIENT_BALANCE,
    "global/invalid-api-key": RefusalKind.AUTH,
    "global/object-does-not-exist": RefusalKind.NOT_FOUND,
    "global/invalid-parameters": RefusalKind.INVALID,
}

# "H100 (80 GB SXM5)", "RTX A6000 (48 GB)": the GPU memory Lambda states for one GPU.
_MEMORY = re.compile(r"\((\d+(?:\.\d+)?)\s*GB", re.IGNORECASE)
_ARM_FAMILIES = frozenset({"GH200", "GB200", "GB300"})  # Grace superchips: the host CPU is Arm
_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "arm64": "arm64", "aarch64": "arm64"}
# Lambda's non-US regions, by the place Lambda names in each region's description.
_COUNTRY = {
    "europe-central-1": "DE",
    "asia-south-1": "IN",
    "asia-northeast-1": "JP",
    "asia-northeast-2": "KR",
    "me-west-1": "IL",
    "australia-east-1": "AU",
}


class LambdaCloudAdapter(ProviderAdapter):
    info = ProviderInfo(
        name="lambdalabs",
        display_name="Lambda Cloud",
        api_base_url="https://cloud.lambda.ai",
        homepage="https://lambda.ai",
        credentials=(CredentialSpec(name="api_key", description="Lambda Cloud API key."),),
        poll_interval_s=60,
        concurrency_limit=1,
        rate_limit_per_minute=60,  # Lambda: about one request per second
        request_timeout_s=10,
    )
    recordings = files(__package__).joinpath("recordings")
    schemas = files(__package__).joinpath("schemas")
    renting = frozenset({RentalAction.PROVISION, RentalAction.STATUS, RentalAction.INSTANCES, RentalAction.TERMINATE})
    billing_granularity_s = 60

    def calls(self, ctx: PollContext) -> Iterable[Call]:
        return [Call(INSTANCE_TYPES_PATH)]

    def authorize(self, call: Call, credentials: Credentials) -> Call:
        if "api_key" not in credentials:
            return call
        return replace(call, headers={**call.headers, "Authorization": f"Bearer {credentials['api_key']}"})

    def parse(self, response: Response, ctx: PollContext) -> Page:
        data = response.json()["data"]
        if not isinstance(data, Mapping):
            raise ValueError("'data' is not an object of instance types")
        records = [
            {"instance_type": entry["instance_type"], "region": region}
            for entry in data.values()
            for region in entry.get("regions_with_capacity_available") or []
        ]
        return Page(records=records)

    def normalise(self, record: Mapping[str, Any], ctx: PollContext) -> Offer | None:
        kind, region = record["instance_type"], record["region"]
        specs = kind["specs"]
        gpu_count = int(specs["gpus"])
        if gpu_count < 1:
            return None  # CPU-only instance types
        gpu_name = str(kind["gpu_description"])
        region_name = str(region["name"])
        return ctx.offer(
            provider_offer_id=f"{kind['name']}/{region_name}",
            name=str(kind["name"]),
            gpu_name=gpu_name,
            gpu_count=gpu_count,
            gpu_memory_gb=gpu_memory_gb(gpu_name),
            price_per_hour=units.dollars_from_cents(kind["price_cents_per_hour"]),
            vcpus=_number(specs.get("vcpus")),
            ram_gb=_number(specs.get("memory_gib")),
            storage_gb=_number(specs.get("storage_gib")),
            cpu_arch=cpu_arch(kind, gpu_name),
            availability_status=Availability.AVAILABLE,
            region=region_name,
            country=region_country(region_name),
        )

    def provision_call(self, request: RentalRequest) -> Call:
        instance_type, region = request.provider_offer_id.split("/", 1)
        key = request.options.get("ssh_key_name")
        body = {
            "region_name": region,
            "instance_type_name": instance_type,
            "ssh_key_names": [key] if key else [],
            "name": request.tag,
            "quantity": 1,
        }
        return Call("/api/v1/instance-operations/launch", method="POST", json=body)

    def read_provisioned(self, response: Response, request: RentalRequest) -> Instance:
        (instance_id,) = response.json()["data"]["instance_ids"]
        return Instance(str(instance_id), InstanceState.CREATING, request.tag, request.gpu_count)

    def status_call(self, instance_id: str) -> Call:
        return Call(f"{INSTANCES_PATH}/{instance_id}")

    def read_status(self, response: Response, instance_id: str) -> Instance:
        return _instance(response.json()["data"])

    def instances_call(self) -> Call:
        return Call(INSTANCES_PATH)

    def read_instances(self, response: Response) -> list[Instance]:
        return [_instance(record) for record in response.json()["data"]]

    def terminate_call(self, instance_id: str) -> Call:
        return Call("/api/v1/instance-operations/terminate", method="POST", json={"instance_ids": [instance_id]})

    def read_refusal(self, response: Response) -> Refusal | None:
        if response.status < 400 or not response.body.startswith(b"{"):
            return None
        error = response.json().get("error") or {}
        kind = _REFUSALS.get(str(error.get("code")))
        if kind is None:
            return None
        return Refusal(kind, " ".join(str(error[k]) for k in ("message", "suggestion") if error.get(k)))


def gpu_memory_gb(gpu_description: str) -> float | None:
    """The per-GPU memory in Lambda's GPU description, e.g. 80.0 for ``H100 (80 GB SXM5)``."""
    match = _MEMORY.search(gpu_description)
    return float(match.group(1)) if match else None


def cpu_arch(kind: Mapping[str, Any], gpu_name: str) -> str | None:
    """The API's ``architecture`` when it sends one; Grace superchips are Arm either way."""
    stated = _ARCH.get(str(kind.get("architecture", "")).lower())
    if stated:
        return stated
    return "arm64" if resolve(gpu_name).gpu_type in _ARM_FAMILIES else None


def region_country(region: str) -> str | None:
    if region.startswith("us-"):
        return "US"
    return _COUNTRY.get(region)


def _number(value: object) -> float | None:
    return None if value is None else float(units.decimal(value))


def _instance(record: Mapping[str, Any]) -> Instance:
    kind = record.get("instance_type") or {}
    cents = kind.get("price_cents_per_hour")
    return Instance(
        str(record["id"]),
        _STATES.get(str(record["status"]), InstanceState.CREATING),
        record.get("name") or None,
        (kind.get("specs") or {}).get("gpus"),
        units.dollars_from_cents(cents) if cents is not None else None,
    )
