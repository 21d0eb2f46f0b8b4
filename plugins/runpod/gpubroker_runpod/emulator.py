"""RunPod's rental API, emulated for tests (``gpubroker.core.testkit.emulator``).

Only the plugin's rental operations are answered here (by ``operationName``); the offers query
is answered from the recordings. Answers follow the GraphQL response format RunPod uses: HTTP
200 with ``data``, or with ``errors`` (and the field null) when RunPod refuses.
"""

from __future__ import annotations

from typing import Any

from gpubroker.core.renting import InstanceState, Refusal, RefusalKind
from gpubroker.core.testkit.emulator import Answer, Cloud, Dialect, EmulatedInstance, EmulatedRequest
from gpubroker_runpod.adapter import GRAPHQL_PATH, RENTAL_OPERATIONS

_MESSAGES = {
    RefusalKind.OUT_OF_CAPACITY: "There are no longer any instances available with the requested specifications. "
    "Please refresh and try again.",
    RefusalKind.INSUFFICIENT_BALANCE: "You do not have enough funds to create this pod.",
    RefusalKind.NOT_FOUND: "pod not found",
    RefusalKind.INVALID: "Something went wrong. Please try again later or contact support.",
}


class RunpodDialect(Dialect):
    def answer(self, request: EmulatedRequest, cloud: Cloud) -> Answer | None:
        body = request.json if isinstance(request.json, dict) else {}
        operation = body.get("operationName")
        if request.path != GRAPHQL_PATH or operation not in RENTAL_OPERATIONS:
            return None
        variables = (body.get("variables") or {}).get("input") or {}
        if operation == "GpuBrokerDeploy":
            offer = f"{variables.get('dataCenterId')}/{variables.get('gpuTypeId')}"
            count = int(variables.get("gpuCount", 1))
            instance = cloud.create(tag=str(variables.get("name", "")), offer_id=offer, gpu_count=count)
            return Answer(200, {"data": {"podFindAndDeployOnDemand": _pod(instance, cloud)}})
        if operation == "GpuBrokerPods":
            cloud.check_credentials()
            return Answer(200, {"data": {"myself": {"pods": [_pod(i, cloud) for i in cloud.listed()]}}})
        if operation == "GpuBrokerPod":
            return Answer(200, {"data": {"pod": _pod(cloud.get(str(variables.get("podId"))), cloud)}})
        cloud.terminate(str(variables.get("podId")))
        return Answer(200, {"data": {"podTerminate": None}})

    def refusal(self, refusal: Refusal) -> Answer:
        if refusal.kind is RefusalKind.AUTH:
            return Answer(401, {"error": "Unauthorized"})
        return Answer(200, {"errors": [{"message": _MESSAGES[refusal.kind]}], "data": None})


def _pod(instance: EmulatedInstance, cloud: Cloud) -> dict[str, Any]:
    running = instance.state(cloud.clock()) is InstanceState.RUNNING
    return {
        "id": instance.instance_id,
        "name": instance.tag,
        "desiredStatus": "RUNNING",
        "gpuCount": instance.gpu_count,
        "costPerHr": float(instance.price_per_hour),
        "runtime": {"uptimeInSeconds": int(cloud.clock() - instance.created_at)} if running else None,
    }
