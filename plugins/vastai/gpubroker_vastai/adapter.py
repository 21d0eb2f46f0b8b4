"""Vast.ai: one search of rentable on-demand offers (``POST /api/v0/bundles/``).

Vast reports the whole instance's on-demand price in ``dph_total`` ($/hour, including the disk
asked for in ``allocated_storage``) and the lowest interruptible bid in ``min_bid`` ($/hour,
without storage), GPU memory in MiB, system memory in MB (the offer's share of the machine),
and the location as ``"Region, CC"``. Both prices are put on one basis: storage included, so the
spot price is ``min_bid + storage_total_cost``. The search needs no API key; when one is
configured it is sent as a bearer token. Facts and sources are in ``README.md`` and
``VAST_API_NOTES.md`` beside this package.

Renting (plugin API 2): an offer is rented by accepting its ask (``PUT /api/v0/asks/{id}/``),
with the broker's tag as the instance's ``label``; instances are listed, read and destroyed under
``/api/v0/instances/``. Vast bills by the second; it has no idempotency key and no way to change
a running instance's GPUs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from decimal import Decimal
from importlib.resources import files
from typing import Any

from gpubroker.core.adapter import Call, Page, PollContext, ProviderAdapter, Response
from gpubroker.core.offer import Availability, Offer
from gpubroker.core.provider import Credentials, CredentialSpec, ProviderInfo
from gpubroker.core.renting import (
    Instance,
    InstanceNotFound,
    InstanceState,
    Refusal,
    RefusalKind,
    RentalAction,
    RentalRequest,
)

SEARCH_LIMIT = 1000
DEFAULT_IMAGE = "vastai/base-image:@vastai-automatic-tag"
RENTAL_DISK_GB = 10
# actual_status values (docs.vast.ai show-instances): null while provisioning, then loading.
_STATES = {
    None: InstanceState.CREATING,
    "created": InstanceState.CREATING,
    "loading": InstanceState.CREATING,
    "running": InstanceState.RUNNING,
    "frozen": InstanceState.RUNNING,
    "rebooting": InstanceState.RUNNING,
    "stopped": InstanceState.STOPPED,
    "exited": InstanceState.STOPPED,
}
_REFUSALS = {
    "no_such_ask": RefusalKind.OUT_OF_CAPACITY,
    "insufficient_credit": RefusalKind.INSUFFICIENT_BALANCE,
    "no_such_instance": RefusalKind.NOT_FOUND,
}
ALLOCATED_STORAGE_GB = 10
MB_PER_GB = 1024


class VastAdapter(ProviderAdapter):
    info = ProviderInfo(
        name="vastai",
        display_name="Vast.ai",
        api_base_url="https://console.vast.ai",
        homepage="https://vast.ai",
        credentials=(CredentialSpec(name="api_key", required=False, description="Vast.ai API key (optional)."),),
        poll_interval_s=60,
        concurrency_limit=2,
        rate_limit_per_minute=30,
    )
    recordings = files(__package__).joinpath("recordings")
    schemas = files(__package__).joinpath("schemas")
    renting = frozenset({RentalAction.PROVISION, RentalAction.STATUS, RentalAction.INSTANCES, RentalAction.TERMINATE})
    billing_granularity_s = 1

    def calls(self, ctx: PollContext) -> Iterable[Call]:
        query = {
            "rentable": {"eq": True},
            "rented": {"eq": False},
            "num_gpus": {"gte": 1},
            "order": [["dph_total", "asc"]],
            "type": "on-demand",
            "allocated_storage": ALLOCATED_STORAGE_GB,
            "limit": SEARCH_LIMIT,
        }
        return [Call("/api/v0/bundles/", method="POST", json=query, tag="on-demand")]

    def authorize(self, call: Call, credentials: Credentials) -> Call:
        if "api_key" not in credentials:
            return call
        return replace(call, headers={**call.headers, "Authorization": f"Bearer {credentials['api_key']}"})

    def parse(self, response: Response, ctx: PollContext) -> Page:
        body = response.json()
        offers = body["offers"]
        if not isinstance(offers, list):
            raise ValueError("'offers' is not a list")
        return Page(records=offers)

    def normalise(self, record: Mapping[str, Any], ctx: PollContext) -> Offer | None:
        gpu_count = int(record["num_gpus"])
        if gpu_count < 1:
            return None
        gpu_name = str(record["gpu_name"])
        region, country = _location(record.get("geolocation"))
        min_bid = record.get("min_bid")
        storage = Decimal(str(record["storage_total_cost"]))
        return ctx.offer(
            provider_offer_id=record["id"],
            name=f"{gpu_count}x {gpu_name}",
            gpu_name=gpu_name,
            gpu_count=gpu_count,
            gpu_memory_gb=round(float(record["gpu_ram"]) / MB_PER_GB, 1),
            price_per_hour=Decimal(str(record["dph_total"])),
            spot_price=Decimal(str(min_bid)) + storage if min_bid else None,
            vcpus=_number(record.get("cpu_cores_effective")),
            ram_gb=_scaled(record.get("cpu_ram"), MB_PER_GB),
            storage_gb=ALLOCATED_STORAGE_GB,
            cpu_arch=_arch(record.get("cpu_arch")),
            availability_status=_availability(record),
            region=region,
            country=country,
            compliance_tags=_tags(record),
        )

    def provision_call(self, request: RentalRequest) -> Call:
        body = {"image": request.image or DEFAULT_IMAGE, "label": request.tag, "disk": RENTAL_DISK_GB, "runtype": "ssh"}
        return Call(f"/api/v0/asks/{int(request.provider_offer_id)}/", method="PUT", json=body)

    def read_provisioned(self, response: Response, request: RentalRequest) -> Instance:
        body = response.json()
        return Instance(str(body["new_contract"]), InstanceState.CREATING, request.tag, request.gpu_count)

    def status_call(self, instance_id: str) -> Call:
        return Call(f"/api/v0/instances/{int(instance_id)}/")

    def read_status(self, response: Response, instance_id: str) -> Instance:
        record = response.json().get("instances")
        if not record:
            raise InstanceNotFound(self.info.name, f"instance {instance_id} does not exist")
        return _instance(record)

    def instances_call(self) -> Call:
        return Call("/api/v0/instances/")

    def read_instances(self, response: Response) -> list[Instance]:
        return [_instance(record) for record in response.json()["instances"]]

    def terminate_call(self, instance_id: str) -> Call:
        return Call(f"/api/v0/instances/{int(instance_id)}/", method="DELETE")

    def read_refusal(self, response: Response) -> Refusal | None:
        if response.status < 400 or not response.body.startswith(b"{"):
            return None
        body = response.json()
        kind = _REFUSALS.get(str(body.get("error")))
        if kind is None:
            return None
        return Refusal(kind, str(body.get("msg") or body.get("error")))


def _location(geolocation: object) -> tuple[str, str | None]:
    """``"Texas, US"`` -> (``"Texas, US"``, ``"US"``); ``"CZ"`` -> (``"CZ"``, ``"CZ"``)."""
    if not isinstance(geolocation, str) or not geolocation.strip():
        return "unknown", None
    text = geolocation.strip()
    code = text.rsplit(",", 1)[-1].strip()
    return text, code if len(code) == 2 and code.isalpha() and code.isupper() else None


def _availability(record: Mapping[str, Any]) -> Availability:
    if record.get("rentable") and not record.get("rented"):
        return Availability.AVAILABLE
    return Availability.UNAVAILABLE


def _tags(record: Mapping[str, Any]) -> tuple[str, ...]:
    tags = []
    if record.get("verification") == "verified":
        tags.append("verified")
    if record.get("hosting_type") == 1:
        tags.append("datacenter")
    if record.get("static_ip"):
        tags.append("static-ip")
    return tuple(tags)


def _arch(value: object) -> str | None:
    return {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "arm64", "aarch64": "arm64"}.get(str(value).lower())


def _number(value: object) -> float | None:
    return None if value is None else round(float(value), 2)  # type: ignore[arg-type]


def _scaled(value: object, divisor: float) -> float | None:
    return None if value is None else round(float(value) / divisor, 1)  # type: ignore[arg-type]


def _instance(record: Mapping[str, Any]) -> Instance:
    state = _STATES.get(record.get("actual_status"), InstanceState.CREATING)
    if record.get("cur_state") == "unloaded":  # released on destroy
        state = InstanceState.TERMINATED
    price = record.get("dph_total")
    return Instance(
        str(record["id"]),
        state,
        record.get("label") or None,
        record.get("num_gpus"),
        Decimal(str(price)) if price is not None else None,
    )
