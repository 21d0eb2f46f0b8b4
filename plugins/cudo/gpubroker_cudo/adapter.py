"""CUDO Compute: VM machine types in every data center with their prices and free capacity.

``GET /v1/vms/machine-types-2`` lists one entry per data center and machine type: the GPU model,
how many GPUs, vCPUs, GiB of RAM and disk are free (``maxGpuFree`` for one VM, ``totalGpuFree``
in all), the sizing rules (vCPUs per GPU, vCPUs per GiB) and the on-demand prices **per
component**: per GPU-hour, per vCPU-hour and per GiB-of-RAM-hour, each a decimal string wrapped in
``{"value": "..."}``. A CUDO VM is configured, not picked from a size list, so this plugin prices
one documented configuration per GPU count (1, 2, 4, 8, as far as one VM can take them now): the
cheapest one that can be rented, with the smallest vCPU and RAM the machine type's rules allow,
plus what every VM needs and CUDO bills by the hour: a boot disk (``BOOT_DISK_GIB`` at
``minStorageGibPriceHr``) and its public IPv4 address (``ipv4PriceHr``). See README.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import replace
from decimal import Decimal
from importlib.resources import files
from typing import Any

from gpubroker.core import units
from gpubroker.core.adapter import Call, Page, PollContext, ProviderAdapter, Response
from gpubroker.core.offer import Availability, Offer
from gpubroker.core.provider import Credentials, CredentialSpec, ProviderInfo

MACHINE_TYPES_PATH = "/v1/vms/machine-types-2"
GPU_COUNTS = (1, 2, 4, 8)
"""The VM sizes offered per GPU machine type; a count above what one VM can get now is left out."""
BOOT_DISK_GIB = 100
"""The boot disk priced with every VM. A VM cannot run without one, and the API publishes its
price per GiB-hour but not the smallest size an image accepts; 100 GiB is what other readers of
this API price, and the offer states it as ``storage_gb``."""


class CudoAdapter(ProviderAdapter):
    info = ProviderInfo(
        name="cudo",
        display_name="CUDO Compute",
        api_base_url="https://rest.compute.cudo.org",
        homepage="https://www.cudocompute.com",
        credentials=(
            CredentialSpec(
                name="api_key",
                required=False,
                description="CUDO Compute API key, sent as a bearer token (the machine-type list is readable without).",
            ),
        ),
        poll_interval_s=60,
        concurrency_limit=2,
        rate_limit_per_minute=60,
        request_timeout_s=20,
    )
    recordings = files(__package__).joinpath("recordings")
    schemas = files(__package__).joinpath("schemas")

    def calls(self, ctx: PollContext) -> Iterable[Call]:
        return [Call(MACHINE_TYPES_PATH, tag="machine-types")]

    def authorize(self, call: Call, credentials: Credentials) -> Call:
        if "api_key" not in credentials:
            return call
        return replace(call, headers={**call.headers, "Authorization": f"Bearer {credentials['api_key']}"})

    def parse(self, response: Response, ctx: PollContext) -> Page:
        """One record per machine type and GPU count (CPU-only types give one record, and no offer)."""
        machine_types = response.json()["machineTypes"]
        if not isinstance(machine_types, list):
            raise ValueError("'machineTypes' is not a list")
        records: list[Mapping[str, Any]] = []
        for machine_type in machine_types:
            records.extend({"machineType": machine_type, "gpuCount": n} for n in gpu_counts(machine_type))
        return Page(records=records)

    def normalise(self, record: Mapping[str, Any], ctx: PollContext) -> Offer | None:
        machine_type, gpu_count = record["machineType"], int(record["gpuCount"])
        gpu_model = str(machine_type.get("gpuModel") or "")
        if gpu_count < 1 or not gpu_model:
            return None
        vcpus, memory_gib = smallest_config(machine_type, gpu_count)
        data_center = str(machine_type["dataCenterId"])
        return ctx.offer(
            provider_offer_id=f"{data_center}/{machine_type['machineType']}/{gpu_count}",
            name=f"{machine_type['machineType']} {gpu_count}x {gpu_model}, {vcpus} vCPU, {memory_gib} GiB",
            gpu_name=gpu_model,
            gpu_count=gpu_count,
            price_per_hour=instance_price(machine_type, gpu_count, vcpus, memory_gib),
            vcpus=vcpus,
            ram_gb=memory_gib,
            storage_gb=BOOT_DISK_GIB,
            availability_status=availability(machine_type, gpu_count),
            region=data_center,
            country=country_of(data_center),
            compliance_tags=("renewable-energy",) if machine_type.get("renewableEnergy") else (),
        )


def gpu_counts(machine_type: Mapping[str, Any]) -> list[int]:
    """The GPU counts to price: ``GPU_COUNTS`` up to ``maxGpuFree``, or one GPU when none is free."""
    if not machine_type.get("gpuModel"):
        return [0]
    free = int(machine_type.get("maxGpuFree") or 0)
    return [n for n in GPU_COUNTS if n <= free] or [1]


def smallest_config(machine_type: Mapping[str, Any], gpu_count: int) -> tuple[int, int]:
    """The fewest vCPUs and GiB of RAM a VM with ``gpu_count`` GPUs may have under the type's rules.

    vCPUs: at least ``minVcpuPerGpu`` per GPU and ``minVcpu``. RAM: at least ``minMemoryGib`` and
    enough that vCPUs per GiB stays within ``maxVcpuPerMemoryGib``; vCPUs then rise if
    ``minVcpuPerMemoryGib`` asks for more. Missing rules count as no constraint.
    """
    vcpus = max(1, math.ceil(gpu_count * _num(machine_type, "minVcpuPerGpu")), math.ceil(_num(machine_type, "minVcpu")))
    max_ratio = _num(machine_type, "maxVcpuPerMemoryGib")
    memory = max(1, math.ceil(_num(machine_type, "minMemoryGib")), math.ceil(vcpus / max_ratio) if max_ratio else 0)
    vcpus = max(vcpus, math.ceil(memory * _num(machine_type, "minVcpuPerMemoryGib")))
    return vcpus, memory


def instance_price(machine_type: Mapping[str, Any], gpu_count: int, vcpus: int, memory_gib: int) -> Decimal:
    """The per-component prices summed, USD per hour: GPUs, vCPUs, GiB of RAM, the boot disk and
    the public IPv4 address, the cheapest configuration that can be rented."""
    price = units.per_instance(price_of(machine_type, "gpuPriceHr"), gpu_count)
    price += vcpus * price_of(machine_type, "vcpuPriceHr") + memory_gib * price_of(machine_type, "memoryGibPriceHr")
    price += BOOT_DISK_GIB * price_of(machine_type, "minStorageGibPriceHr") + price_of(machine_type, "ipv4PriceHr")
    if price <= 0:
        raise ValueError(f"non-positive hourly price {price}")
    return price


def price_of(machine_type: Mapping[str, Any], field: str) -> Decimal:
    """A CUDO price (``{"value": "2.5"}``, a google.type.Decimal) as a ``Decimal``; a bare number is accepted too."""
    value = machine_type[field]
    return units.decimal(value["value"] if isinstance(value, Mapping) else value)


def availability(machine_type: Mapping[str, Any], gpu_count: int) -> Availability:
    """How many such VMs fit in the free GPUs: none (or more GPUs than one VM can get) is unavailable."""
    if gpu_count > int(machine_type.get("maxGpuFree") or 0):
        return Availability.UNAVAILABLE
    total = int(machine_type.get("totalGpuFree") or machine_type.get("maxGpuFree") or 0)
    return units.availability(total // gpu_count)


def country_of(data_center_id: str) -> str | None:
    """CUDO data-center ids start with the country: ``gb-bournemouth-1`` -> ``GB``."""
    head = data_center_id.split("-", 1)[0]
    return head.upper() if len(head) == 2 and head.isalpha() and "-" in data_center_id else None


def _num(machine_type: Mapping[str, Any], field: str) -> float:
    value = machine_type.get(field)
    return float(value) if value not in (None, "") else 0.0
