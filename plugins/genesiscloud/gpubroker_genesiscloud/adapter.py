"""Genesis Cloud: which instance types each region can start now; no prices.

The Compute API publishes no instance-type listing and no prices (its documentation sends readers
to the pricing web page). What it does publish is ``GET /compute/v1/availability/{region}/instances``:
every instance type of the region with ``available`` and, when known, a ``count`` of instances
that can be started. The instance type identifier spells out the hardware
(``vcpu-192_memory-1920g_nvidia-h100-sxm5-8``: 192 vCPUs, 1920 GiB, eight H100 SXM5), so that is
where GPU, count, vCPUs, memory and disk come from. Offers therefore carry no price. Facts and
sources are in this plugin's README.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from importlib.resources import files
from typing import Any

from gpubroker.core import units
from gpubroker.core.adapter import Call, Page, PollContext, ProviderAdapter, Response
from gpubroker.core.offer import Availability, Offer
from gpubroker.core.provider import Credentials, CredentialSpec, ProviderInfo

REGIONS = ("EUC-DE-MUC-1", "NORD-NO-KRS-1")
PATH = "/compute/v1/availability/{region}/instances"
ACCELERATOR_VENDORS = ("nvidia", "amd", "intel")

_PART = re.compile(r"^(vcpu|memory|disk)-(\d+)g?$")
_ACCELERATOR = re.compile(r"^(?P<model>(?:nvidia|amd|intel)[a-z0-9-]*?)-(?P<count>\d+)$")


@dataclass(frozen=True)
class InstanceType:
    """What an instance type identifier says about the hardware."""

    vcpus: int | None
    memory_gib: int | None
    disk_gib: int | None
    accelerator: str | None
    count: int


def parse_instance_type(identifier: str) -> InstanceType:
    """``vcpu-4_memory-24g_disk-80g_nvidia3090-1`` -> 4 vCPUs, 24 GiB, 80 GiB, ``nvidia3090`` x1.

    Both spellings Genesis Cloud has used are read: the older one with a ``disk-`` part and a
    glued model (``nvidia3090``), and the current one with a dashed model (``nvidia-rtx-3090``).
    A type without an accelerator part is a CPU type (count 0).
    """
    sizes: dict[str, int] = {}
    accelerator, count = None, 0
    for part in identifier.lower().split("_"):
        if match := _PART.match(part):
            sizes[match[1]] = int(match[2])
        elif (match := _ACCELERATOR.match(part)) and part.startswith(ACCELERATOR_VENDORS):
            accelerator, count = match["model"], int(match["count"])
        else:
            raise ValueError(f"unexpected part {part!r} in instance type {identifier!r}")
    return InstanceType(sizes.get("vcpu"), sizes.get("memory"), sizes.get("disk"), accelerator, count)


class GenesisCloudAdapter(ProviderAdapter):
    info = ProviderInfo(
        name="genesiscloud",
        display_name="Genesis Cloud",
        api_base_url="https://api.genesiscloud.com",
        homepage="https://www.genesiscloud.com",
        credentials=(CredentialSpec(name="api_token", description="Genesis Cloud API token (Keys and Tokens)."),),
        poll_interval_s=60,
        # One call at a time: a poll's offers then come back in the same order every poll.
        concurrency_limit=1,
        rate_limit_per_minute=60,
    )
    recordings = files(__package__).joinpath("recordings")
    schemas = files(__package__).joinpath("schemas")

    def calls(self, ctx: PollContext) -> Iterable[Call]:
        return [Call(PATH.format(region=region), tag=region) for region in REGIONS]

    def authorize(self, call: Call, credentials: Credentials) -> Call:
        return replace(call, headers={**call.headers, "Authorization": f"Bearer {credentials['api_token']}"})

    def parse(self, response: Response, ctx: PollContext) -> Page:
        availability = response.json()["availability"]
        types = availability["instance_types"]
        if not isinstance(types, list):
            raise ValueError("'instance_types' is not a list")
        region = str(availability["region"])
        return Page(records=[{**entry, "region": region} for entry in types])

    def normalise(self, record: Mapping[str, Any], ctx: PollContext) -> Offer | None:
        identifier = str(record["type"])
        hardware = parse_instance_type(identifier)
        if hardware.accelerator is None or hardware.count < 1:
            return None  # a CPU instance type
        region = str(record["region"])
        return ctx.offer(
            provider_offer_id=f"{region}/{identifier}",
            name=identifier,
            gpu_name=hardware.accelerator,
            gpu_count=hardware.count,
            price_per_hour=None,
            vcpus=hardware.vcpus,
            ram_gb=hardware.memory_gib,
            storage_gb=hardware.disk_gib,
            cpu_arch="x86_64",
            availability_status=availability_of(record),
            region=region,
            country=country_of(region),
        )


def availability_of(record: Mapping[str, Any]) -> Availability:
    """``available: false`` is unavailable; otherwise the ``count`` of startable instances when
    given (1-2 limited), else available."""
    if not record["available"]:
        return Availability.UNAVAILABLE
    count = record.get("count")
    return Availability.AVAILABLE if count is None else units.availability(int(count))


def country_of(region: str) -> str | None:
    """Region identifiers are ``AREA-CC-SITE-N`` (``EUC-DE-MUC-1``, ``NORD-NO-KRS-1``)."""
    parts = region.split("-")
    return parts[1] if len(parts) >= 3 and len(parts[1]) == 2 and parts[1].isalpha() else None
