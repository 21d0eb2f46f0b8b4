"""RunPod: Secure Cloud GPU pods per data center, from one GraphQL query.

One ``POST /graphql`` asks for two root fields at once: ``gpuTypes`` (the per-GPU hourly list
prices ``securePrice`` / ``secureSpotPrice`` in USD and the largest pod size
``maxGpuCountSecureCloud``) and ``dataCenters`` (each data center's ``gpuAvailability``, a stock
word per GPU type). Asking for both in one document keeps the join inside one response, so a
poll is one request. An offer is one (data center, GPU type, GPU count) a pod can be rented as;
RunPod bills per GPU, so the instance price is the per-GPU price times the count. Facts and
sources are in README.md beside this package.

Renting (plugin API 2) goes through the same GraphQL endpoint: ``podFindAndDeployOnDemand``
(Secure Cloud, the offer's data center, GPU type and count, the broker's tag as the pod's
``name``), ``pod``, ``myself { pods }`` and ``podTerminate``. RunPod answers refusals with HTTP
200 and a GraphQL ``errors`` list whose message says why. It bills by the second, has no
idempotency key and cannot change a pod's GPU count.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from importlib.resources import files
from typing import Any

from gpubroker.core import units
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

POD_FIELDS = "id name desiredStatus gpuCount costPerHr runtime { uptimeInSeconds }"
RENTAL_OPERATIONS = {
    "GpuBrokerDeploy": "mutation GpuBrokerDeploy($input: PodFindAndDeployOnDemandInput) "
    f"{{ podFindAndDeployOnDemand(input: $input) {{ {POD_FIELDS} }} }}",
    "GpuBrokerPod": f"query GpuBrokerPod($input: PodFilter) {{ pod(input: $input) {{ {POD_FIELDS} }} }}",
    "GpuBrokerPods": f"query GpuBrokerPods {{ myself {{ pods {{ {POD_FIELDS} }} }} }}",
    "GpuBrokerTerminate": "mutation GpuBrokerTerminate($input: PodTerminateInput!) { podTerminate(input: $input) }",
}
DEFAULT_IMAGE = "runpod/base:0.6.2-cuda12.2.0"
_CAPACITY = re.compile(r"no longer any instances available|not enough free gpus|does not have the resources", re.I)
_BALANCE = re.compile(r"(enough|insufficient) (funds|credit|balance)", re.I)
_NOT_FOUND = re.compile(r"pod not found|could not find pod", re.I)

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
    renting = frozenset({RentalAction.PROVISION, RentalAction.STATUS, RentalAction.INSTANCES, RentalAction.TERMINATE})
    billing_granularity_s = 1

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

    def provision_call(self, request: RentalRequest) -> Call:
        data_center, gpu_type, count = request.provider_offer_id.split("/")
        pod = {
            "cloudType": "SECURE",
            "dataCenterId": data_center,
            "gpuTypeId": gpu_type,
            "gpuCount": int(count),
            "name": request.tag,
            "imageName": request.image or DEFAULT_IMAGE,
            "containerDiskInGb": 20,
            "volumeInGb": 0,
            "startSsh": True,
            "supportPublicIp": True,
        }
        return _graphql("GpuBrokerDeploy", {"input": pod})

    def read_provisioned(self, response: Response, request: RentalRequest) -> Instance:
        return _instance(response.json()["data"]["podFindAndDeployOnDemand"])

    def status_call(self, instance_id: str) -> Call:
        return _graphql("GpuBrokerPod", {"input": {"podId": instance_id}})

    def read_status(self, response: Response, instance_id: str) -> Instance:
        pod = response.json()["data"]["pod"]
        if pod is None:
            raise InstanceNotFound(self.info.name, f"pod {instance_id} does not exist")
        return _instance(pod)

    def instances_call(self) -> Call:
        return _graphql("GpuBrokerPods", {})

    def read_instances(self, response: Response) -> list[Instance]:
        return [_instance(pod) for pod in response.json()["data"]["myself"]["pods"]]

    def terminate_call(self, instance_id: str) -> Call:
        return _graphql("GpuBrokerTerminate", {"input": {"podId": instance_id}})

    def read_refusal(self, response: Response) -> Refusal | None:
        if not response.body.startswith(b"{"):
            return None
        errors = response.json().get("errors") or []
        message = str(errors[0].get("message", "")) if errors else ""
        for pattern, kind in (
            (_CAPACITY, RefusalKind.OUT_OF_CAPACITY),
            (_BALANCE, RefusalKind.INSUFFICIENT_BALANCE),
            (_NOT_FOUND, RefusalKind.NOT_FOUND),
        ):
            if pattern.search(message):
                return Refusal(kind, message)
        if errors:
            return Refusal(RefusalKind.INVALID, message or "RunPod answered with a GraphQL error")
        return None


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


def _graphql(operation: str, variables: Mapping[str, Any]) -> Call:
    body = {"operationName": operation, "query": RENTAL_OPERATIONS[operation], "variables": variables}
    return Call(GRAPHQL_PATH, method="POST", json=body)


def _instance(pod: Mapping[str, Any]) -> Instance:
    desired = str(pod.get("desiredStatus"))
    if desired == "TERMINATED":
        state = InstanceState.TERMINATED
    elif desired == "EXITED":
        state = InstanceState.STOPPED
    else:  # RUNNING (or CREATED): running once the pod reports a runtime
        state = InstanceState.RUNNING if pod.get("runtime") else InstanceState.CREATING
    price = pod.get("costPerHr")
    return Instance(
        str(pod["id"]), state, pod.get("name") or None, pod.get("gpuCount"), units.decimal(price) if price else None
    )
