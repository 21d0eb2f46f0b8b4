"""RunPod: Secure Cloud GPU pods per data center, from one GraphQL query.

One ``POST /graphql`` asks for two root fields at once: ``gpuTypes`` (the per-GPU hourly list
prices ``securePrice`` / ``secureSpotPrice`` in USD and the largest pod size
``maxGpuCountSecureCloud``) and ``dataCenters`` (each data center's ``gpuAvailability``, a stock
word per GPU type). Asking for both in one document keeps the join inside one response, so a
poll is one request. An offer is one (data center, GPU type, GPU count) a pod can be rented as;
RunPod bills per GPU, so the instance price is the per-GPU price times the count. Facts and
sources are in README.md beside this package.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from importlib.resources import files
from typing import Any

from gpubroker.core import units
from gpubroker.core.adapter import Call, Page, PollContext, ProviderAdapter, Response
from gpubroker.core.offer import Availability, Offer
from gpubroker.core.provider import Credentials, CredentialSpec, ProviderInfo

GRAPHQL_PATH = "/graphql"
OPERATION = "GpuBrokerSecureCloud"
QUERY = """query GpuBrokerSecureCloud {
  dataCenters { id name location listed gpuAvailability { gpuTypeId stockStatus } }
  gpuTypes {
    id displayName manufacturer memoryInGb
    secureCloud maxGpuCount maxGpuCountSecureCloud
    securePrice secureSpotPrice
  }
}"""

# RunPod's stock words for a GPU type in a data center. An empty or missing word means the
# type is listed there but RunPod reports no stock for it.
_STOCK = {"high": Availability.AVAILABLE, "medium": Availability.AVAILABLE, "low": Availability.LIMITED}


class RunpodAdapter(ProviderAdapter):
    info = ProviderInfo(
        name="runpod",
        display_name="RunPod",
        api_base_url="https://api.runpod.io",
        homepage="https://www.runpod.io",
        credentials=(CredentialSpec(name="api_key", description="RunPod API key (read access is enough)."),),
        poll_interval_s=60,
        concurrency_limit=1,
        rate_limit_per_minute=60,
        request_timeout_s=15,
    )
    recordings = files(__package__).joinpath("recordings")
    schemas = files(__package__).joinpath("schemas")

    def calls(self, ctx: PollContext) -> Iterable[Call]:
        return [Call(GRAPHQL_PATH, method="POST", json={"operationName": OPERATION, "query": QUERY, "variables": {}})]

    def authorize(self, call: Call, credentials: Credentials) -> Call:
        # RunPod's current clients send the key as a bearer token; the older ``?api_key=``
        # query parameter would put the key into every logged URL.
        if "api_key" not in credentials:
            return call
        return replace(call, headers={**call.headers, "Authorization": f"Bearer {credentials['api_key']}"})

    def parse(self, response: Response, ctx: PollContext) -> Page:
        body = response.json()
        if body.get("errors"):
            # GraphQL reports query problems with HTTP 200 and an ``errors`` list.
            raise ValueError(f"GraphQL errors: {body['errors'][0].get('message', body['errors'][0])}")
        data = body["data"]
        gpu_types = {gpu["id"]: gpu for gpu in data["gpuTypes"] or []}
        return Page(records=list(_pod_records(data["dataCenters"] or [], gpu_types)))

    def normalise(self, record: Mapping[str, Any], ctx: PollContext) -> Offer | None:
        gpu, dc, count = record["gpuType"], record["dataCenter"], int(record["gpuCount"])
        per_gpu = units.decimal(gpu["securePrice"])
        if per_gpu <= 0:
            return None  # not rentable on Secure Cloud: RunPod reports 0 instead of a price
        spot = gpu.get("secureSpotPrice")
        spot_per_gpu = units.decimal(spot) if spot else None
        name = str(gpu["displayName"])
        return ctx.offer(
            provider_offer_id=f"{dc['id']}/{gpu['id']}/{count}",
            name=f"{count}x {name}",
            gpu_name=name,
            gpu_count=count,
            gpu_memory_gb=float(gpu["memoryInGb"]) if gpu.get("memoryInGb") else None,
            price_per_hour=units.per_instance(per_gpu, count),
            spot_price=units.per_instance(spot_per_gpu, count) if spot_per_gpu and spot_per_gpu > 0 else None,
            availability_status=stock_availability(record.get("stockStatus")),
            region=str(dc["id"]),
            country=data_center_country(str(dc["id"])),
            compliance_tags=("secure-cloud",),
        )


def _pod_records(data_centers: list[Mapping[str, Any]], gpu_types: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    """One record per (listed data center, GPU type it stocks, pod size up to the Secure Cloud maximum)."""
    for dc in data_centers:
        if dc.get("listed") is False:
            continue
        for entry in dc.get("gpuAvailability") or []:
            gpu = gpu_types.get(entry["gpuTypeId"])
            if gpu is None or not gpu.get("secureCloud"):
                continue
            largest = int(gpu.get("maxGpuCountSecureCloud") or gpu.get("maxGpuCount") or 0)
            place = {"id": dc["id"], "name": dc.get("name"), "location": dc.get("location")}
            for count in range(1, largest + 1):
                yield {"dataCenter": place, "gpuType": gpu, "gpuCount": count, "stockStatus": entry.get("stockStatus")}


def stock_availability(word: object) -> Availability:
    """``High``/``Medium`` -> available, ``Low`` -> limited, empty or null -> unavailable."""
    if word is None or (isinstance(word, str) and not word.strip()):
        return Availability.UNAVAILABLE
    if isinstance(word, str) and word.strip().lower() in _STOCK:
        return _STOCK[word.strip().lower()]
    return units.availability(word)


def data_center_country(data_center_id: str) -> str | None:
    """The country in RunPod's data center id: ``US-TX-3`` -> US, ``CA-MTL-1`` -> CA,
    ``EU-RO-1`` -> RO, ``EUR-IS-2`` -> IS, ``AP-JP-1`` -> JP. US and Canadian ids name a state or
    city second, every other id names the country second."""
    parts = data_center_id.upper().split("-")
    if len(parts) < 3:
        return None
    if parts[0] in ("US", "CA"):
        return parts[0]
    code = parts[1]
    return code if len(code) == 2 and code.isalpha() else None
