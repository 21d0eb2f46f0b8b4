"""Nebius AI Cloud: GPU platforms and presets per region, from the Compute API; no prices.

Nebius publishes no machine-readable price list. Its API is gRPC only: a platform (``gpu-h100-sxm``)
and its presets (``8gpu-128vcpu-1600gb``) come from ``nebius.compute.v1.PlatformService/List`` on
``compute.api.nebius.cloud:443``, asked of each region's public-images project
(``project-e00public-images`` is eu-north1). Prices exist only as per-spec estimates from the
authenticated billing calculator, which is not a price list (see the README), so offers carry no
price and no stock signal.

The GPUBROKER runtime speaks HTTP/1.1 with JSON, not gRPC. The calls are therefore written as a
gRPC-JSON transcoder takes them (``POST /<package>.<Service>/<Method>`` with the request message
as proto3 JSON, the answer as proto3 JSON), which is how Envoy's ``grpc_json_transcoder`` maps
unannotated methods; a deployment points ``GPUBROKER_PROVIDER_BASE_URLS`` for ``nebius`` at such
a bridge in front of ``compute.api.nebius.cloud:443``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from importlib.resources import files
from typing import Any

from gpubroker.core.adapter import Call, Page, PollContext, ProviderAdapter, Response
from gpubroker.core.offer import Availability, Offer
from gpubroker.core.provider import Credentials, CredentialSpec, ProviderInfo

LIST_PLATFORMS = "/nebius.compute.v1.PlatformService/List"
PAGE_SIZE = "100"  # ListPlatformsRequest.page_size is an int64: a string in proto3 JSON
REGIONS = {"e00": ("eu-north1", "FI"), "e01": ("eu-west1", "FR"), "u00": ("us-central1", "US")}
"""Routing code of each region's public-images project -> (region, country)."""


def list_call(code: str, page_token: str = "") -> Call:
    body: dict[str, str] = {"parentId": f"project-{code}public-images", "pageSize": PAGE_SIZE}
    if page_token:
        body["pageToken"] = page_token
    return Call(LIST_PLATFORMS, method="POST", json=body, tag=code)


class NebiusAdapter(ProviderAdapter):
    info = ProviderInfo(
        name="nebius",
        display_name="Nebius AI Cloud",
        api_base_url="https://compute.api.nebius.cloud",
        homepage="https://nebius.com/prices",
        credentials=(
            CredentialSpec(
                name="iam_token",
                description="Nebius IAM access token: `nebius iam get-access-token`, or a service account's.",
            ),
        ),
        poll_interval_s=3600,
        # One call at a time: a poll's offers then come back in the same order every poll.
        concurrency_limit=1,
        rate_limit_per_minute=60,
        request_timeout_s=10,
    )
    recordings = files(__package__).joinpath("recordings")
    schemas = files(__package__).joinpath("schemas")

    def calls(self, ctx: PollContext) -> Iterable[Call]:
        return [list_call(code) for code in REGIONS]

    def authorize(self, call: Call, credentials: Credentials) -> Call:
        return replace(call, headers={**call.headers, "Authorization": f"Bearer {credentials['iam_token']}"})

    def parse(self, response: Response, ctx: PollContext) -> Page:
        body = response.json()
        code = str(response.call.json["parentId"]).removeprefix("project-")[:3]
        region = REGIONS[code][0]
        records = []
        for platform in body.get("items", []):  # proto3 JSON leaves out an empty list
            for preset in platform["spec"].get("presets", []):
                records.append({"region": region, "platform": platform, "preset": preset})
        token = body.get("nextPageToken", "")
        return Page(records=records, follow=[list_call(code, token)] if token else [])

    def normalise(self, record: Mapping[str, Any], ctx: PollContext) -> Offer | None:
        platform, preset = record["platform"], record["preset"]
        resources = preset["resources"]
        gpu_count = int(resources.get("gpuCount", 0))  # proto3 JSON omits zero values
        if gpu_count < 1:
            return None  # a CPU preset
        name = str(platform["metadata"]["name"])
        spec = platform["spec"]
        region = str(record["region"])
        return ctx.offer(
            provider_offer_id=f"{region}/{name}/{preset['name']}",
            name=f"{name} {preset['name']}",
            gpu_name=name,
            gpu_count=gpu_count,
            gpu_memory_gb=gpu_memory_gb(spec),
            price_per_hour=None,
            vcpus=resources.get("vcpuCount"),
            ram_gb=resources.get("memoryGibibytes"),
            cpu_arch="x86_64",
            availability_status=Availability.AVAILABLE,  # listed; the API has no stock signal
            region=region,
            country=COUNTRY_OF_REGION.get(region),
        )


COUNTRY_OF_REGION = dict(REGIONS.values())


def gpu_memory_gb(spec: Mapping[str, Any]) -> float | None:
    """``gpuMemoryGigabytes`` (current) or the deprecated ``gpuMemoryGibibytes``; none for CPU
    platforms, which leave both out."""
    for field in ("gpuMemoryGigabytes", "gpuMemoryGibibytes"):
        if spec.get(field):
            return float(spec[field])
    return None
