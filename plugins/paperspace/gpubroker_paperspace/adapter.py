"""Paperspace (DigitalOcean): which GPU machine types can be created in which datacenter now.

Paperspace's public API (``https://api.paperspace.com/v1``) has no price list and no list of
machine types: its only machine-type endpoint is ``GET /machine-availability?machineType=&
region=``, which answers ``{"available": true|false}`` for one pair. So the pairs to ask about
come from Paperspace's documented GPU availability table (``MACHINE_TYPES`` below), one call per
pair, and an offer is a pair Paperspace says can be created now. Prices are published only on
the human-readable pricing page, so every offer has ``price_per_hour=None``. Facts and sources
are in README.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from importlib.resources import files
from typing import Any

from gpubroker.core.adapter import Call, Page, PollContext, ProviderAdapter, Response
from gpubroker.core.offer import Availability, Offer
from gpubroker.core.provider import Credentials, CredentialSpec, ProviderInfo

AVAILABILITY_PATH = "/v1/machine-availability"

# Paperspace datacenters: the API's region id, and where the datacenter is.
REGIONS = {"ny2": "US", "ca1": "US", "ams1": "NL"}


@dataclass(frozen=True)
class MachineType:
    """One GPU machine type from Paperspace's docs: its GPU, how many, and where it is sold."""

    gpu: str
    count: int
    memory_gb: float
    regions: tuple[str, ...]


# From the Machines availability table (docs.digitalocean.com/products/paperspace/machines/
# details/availability) and the multi-GPU sizes of the machine types page. A machine type the
# docs do not list in a datacenter is not asked about there.
MACHINE_TYPES: dict[str, MachineType] = {
    "H100": MachineType("H100", 1, 80, ("ny2",)),
    "H100x8": MachineType("H100", 8, 80, ("ny2",)),
    "A100-80G": MachineType("A100-80G", 1, 80, ("ny2",)),
    "A100-80Gx8": MachineType("A100-80G", 8, 80, ("ny2",)),
    "A100": MachineType("A100", 1, 40, ("ny2",)),
    "A6000": MachineType("A6000", 1, 48, ("ny2", "ca1")),
    "A6000x2": MachineType("A6000", 2, 48, ("ny2", "ca1")),
    "A6000x4": MachineType("A6000", 4, 48, ("ny2", "ca1")),
    "A5000": MachineType("A5000", 1, 24, ("ny2", "ca1")),
    "A4000": MachineType("A4000", 1, 16, ("ny2", "ams1", "ca1")),
    "V100-32G": MachineType("V100-32G", 1, 32, ("ny2",)),
    "V100": MachineType("V100", 1, 16, ("ny2", "ams1")),
    "RTX5000": MachineType("RTX5000", 1, 16, ("ny2",)),
    "RTX4000": MachineType("RTX4000", 1, 8, ("ny2", "ams1", "ca1")),
    "P6000": MachineType("P6000", 1, 24, ("ny2", "ams1", "ca1")),
    "P5000": MachineType("P5000", 1, 16, ("ny2", "ams1", "ca1")),
    "P4000": MachineType("P4000", 1, 8, ("ny2", "ams1", "ca1")),
}


class PaperspaceAdapter(ProviderAdapter):
    info = ProviderInfo(
        name="paperspace",
        display_name="Paperspace",
        api_base_url="https://api.paperspace.com",
        homepage="https://www.paperspace.com",
        credentials=(CredentialSpec(name="api_key", description="Paperspace API key (sent as a bearer token)."),),
        poll_interval_s=300,
        # One call at a time keeps the offers in call order from poll to poll (the conformance
        # suite compares the order); 32 small GETs take a few seconds this way.
        concurrency_limit=1,
        # Paperspace documents no rate limit. One poll is len(calls) requests every 300 s;
        # 240/min lets them go out in one burst (the bucket holds ten seconds' worth).
        rate_limit_per_minute=240,
    )
    recordings = files(__package__).joinpath("recordings")
    schemas = files(__package__).joinpath("schemas")

    def calls(self, ctx: PollContext) -> Iterable[Call]:
        return [
            Call(AVAILABILITY_PATH, params={"machineType": name, "region": region}, tag=region)
            for name, machine in MACHINE_TYPES.items()
            for region in machine.regions
        ]

    def authorize(self, call: Call, credentials: Credentials) -> Call:
        if "api_key" not in credentials:
            return call
        return replace(call, headers={**call.headers, "Authorization": f"Bearer {credentials['api_key']}"})

    def parse(self, response: Response, ctx: PollContext) -> Page:
        available = response.json()["available"]
        if not isinstance(available, bool):
            raise ValueError(f"'available' is not a boolean: {available!r}")
        if not available:
            return Page()  # cannot be created there now: no offer
        params = response.call.params
        return Page(records=[{"machineType": params["machineType"], "region": params["region"], "available": True}])

    def normalise(self, record: Mapping[str, Any], ctx: PollContext) -> Offer | None:
        name, region = str(record["machineType"]), str(record["region"])
        machine = MACHINE_TYPES[name]
        return ctx.offer(
            provider_offer_id=f"{name}/{region}",
            name=name,
            gpu_name=machine.gpu,
            gpu_count=machine.count,
            gpu_memory_gb=machine.memory_gb,
            price_per_hour=None,  # Paperspace publishes no machine-readable hourly price
            availability_status=Availability.AVAILABLE if record["available"] is True else Availability.UNAVAILABLE,
            region=region,
            country=REGIONS.get(region),
        )
