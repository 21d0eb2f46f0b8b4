"""Amazon EC2: on-demand Linux prices of GPU instances from the public AWS Price List files.

A poll reads ``/offers/v1.0/aws/AmazonEC2/current/region_index.json`` (a small JSON file naming
each region's current offer file) and then, for each region in ``REGIONS``, that region's
offer file in its CSV form (``.../AmazonEC2/<version>/<region>/index.csv``). Rows are filtered
to on-demand, Linux, shared tenancy, no pre-installed software and ``CapacityStatus=Used`` for
the GPU families in ``families.py``. ``PricePerUnit`` is USD per ``Hrs`` for the whole instance.
No credentials are needed. Why regional CSV files, and their size, are explained in the README.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from importlib.resources import files
from typing import Any

from gpubroker.core import fx, units
from gpubroker.core.adapter import Call, Page, PollContext, ProviderAdapter, Response
from gpubroker.core.offer import Availability, Offer
from gpubroker.core.provider import ProviderInfo, WorkerResources
from gpubroker_aws.families import family_of
from gpubroker_aws.pricelist import gpu_rows

INDEX_PATH = "/offers/v1.0/aws/AmazonEC2/current/region_index.json"

# Regions polled: where the GPU families are sold. Each is one (large) file per poll.
REGIONS = (
    "us-east-1", "us-east-2", "us-west-2", "ca-central-1", "eu-central-1", "eu-west-1", "eu-west-2",
    "eu-north-1", "ap-northeast-1", "ap-northeast-2", "ap-south-1", "ap-southeast-2",
)  # fmt: skip

COUNTRIES = {
    "us-east-1": "US", "us-east-2": "US", "us-west-1": "US", "us-west-2": "US", "ca-central-1": "CA",
    "eu-central-1": "DE", "eu-central-2": "CH", "eu-west-1": "IE", "eu-west-2": "GB", "eu-west-3": "FR",
    "eu-north-1": "SE", "eu-south-1": "IT", "eu-south-2": "ES", "ap-northeast-1": "JP", "ap-northeast-2": "KR",
    "ap-northeast-3": "JP", "ap-south-1": "IN", "ap-southeast-1": "SG", "ap-southeast-2": "AU",
    "ap-southeast-3": "ID", "ap-east-1": "HK", "sa-east-1": "BR", "me-central-1": "AE", "il-central-1": "IL",
}  # fmt: skip

_GIB = re.compile(r"([\d.,]+)\s*GiB")
_DISKS = re.compile(r"(\d+)\s*x\s*([\d,]+)")


class AwsAdapter(ProviderAdapter):
    info = ProviderInfo(
        name="aws",
        display_name="Amazon Web Services",
        api_base_url="https://pricing.us-east-1.amazonaws.com",
        homepage="https://aws.amazon.com/ec2/pricing/on-demand/",
        credentials=(),
        poll_interval_s=21600,
        concurrency_limit=1,  # one large regional file in memory at a time
        rate_limit_per_minute=30,
        request_timeout_s=60,
        # A large region's CSV file (hundreds of MB, see the README) is held whole while it is read.
        resources=WorkerResources(memory_request="768Mi", memory_limit="1536Mi", cpu_limit="1"),
    )
    recordings = files(__package__).joinpath("recordings")
    schemas = files(__package__).joinpath("schemas")

    def calls(self, ctx: PollContext) -> Iterable[Call]:
        return [Call(INDEX_PATH, tag="region-index")]

    def parse(self, response: Response, ctx: PollContext) -> Page:
        if response.call.path == INDEX_PATH:
            return Page(follow=region_files(response.json()))
        return Page(records=list(gpu_rows(response.body)))

    def normalise(self, record: Mapping[str, Any], ctx: PollContext) -> Offer | None:
        instance_type = record["Instance Type"]
        family = family_of(instance_type)
        if family is None:
            return None
        price = fx.to_usd(units.decimal(record["PricePerUnit"]), record["Currency"])
        if price == 0:
            return None  # listed but not sold on demand (AWS lists such SKUs at 0.00)
        region = record["Region Code"]
        return ctx.offer(
            provider_offer_id=f"{region}/{instance_type}",
            name=instance_type,
            gpu_name=family.gpu_name,
            gpu_count=int(record["GPU"]),
            gpu_memory_gb=family.gpu_memory_gb,
            price_per_hour=price,
            vcpus=float(record["vCPU"]),
            ram_gb=gib(record["Memory"]),
            storage_gb=local_storage_gb(record.get("Storage", "")),
            cpu_arch=family.cpu_arch,
            availability_status=Availability.AVAILABLE,
            region=region,
            country=COUNTRIES.get(region),
        )


def region_files(index: Mapping[str, Any]) -> list[Call]:
    """One call per polled region that the index lists, for the CSV twin of its offer file."""
    regions = index["regions"]
    calls = []
    for code in REGIONS:
        entry = regions.get(code)
        if entry is None:
            continue
        url = str(entry["currentVersionUrl"])
        if not url.endswith("/index.json"):
            raise ValueError(f"unexpected currentVersionUrl {url!r}")
        calls.append(Call(url.removesuffix(".json") + ".csv", tag=code))
    return calls


def gib(text: str) -> float:
    """``"2048 GiB"`` -> 2048.0."""
    match = _GIB.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"memory not in GiB: {text!r}")
    return float(Decimal(match[1].replace(",", "")))


def local_storage_gb(text: str) -> float | None:
    """``"8 x 3840 SSD"`` -> 30720; ``"EBS only"`` -> None (no instance storage)."""
    match = _DISKS.search(text)
    return None if match is None else float(int(match[1]) * int(match[2].replace(",", "")))
